package ldapdir

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/google/go-cmp/cmp"
)

// fakeAD serves a group the way Active Directory does when its member
// attribute is larger than MaxValRange: "member;range=0-(n-1)" first, then
// the next ranges on base searches for "member;range=lo-*". slapd cannot
// serve ranged retrieval, so this path is proven with this fake.
type fakeAD struct {
	members  []string
	step     int
	requests []string
	fail     bool
}

func (f *fakeAD) rangeAttr(lo int) *ldap.EntryAttribute {
	hi := lo + f.step - 1
	end := fmt.Sprint(hi)
	if hi >= len(f.members)-1 {
		hi, end = len(f.members)-1, "*"
	}
	return ldap.NewEntryAttribute(fmt.Sprintf("member;range=%d-%s", lo, end), f.members[lo:hi+1])
}

func (f *fakeAD) Search(req *ldap.SearchRequest) (*ldap.SearchResult, error) {
	if req.Scope == ldap.ScopeBaseObject {
		f.requests = append(f.requests, req.Attributes[0])
		if f.fail {
			return nil, errors.New("connection reset")
		}
		var lo int
		if _, err := fmt.Sscanf(req.Attributes[0], "member;range=%d-*", &lo); err != nil {
			return nil, err
		}
		return &ldap.SearchResult{Entries: []*ldap.Entry{{DN: "CN=Big,OU=Groups,DC=ad", Attributes: []*ldap.EntryAttribute{f.rangeAttr(lo)}}}}, nil
	}
	f.requests = append(f.requests, req.Filter)
	return &ldap.SearchResult{Entries: []*ldap.Entry{{DN: "CN=Big,OU=Groups,DC=ad", Attributes: []*ldap.EntryAttribute{
		ldap.NewEntryAttribute("cn", []string{"Big"}),
		ldap.NewEntryAttribute("gidNumber", []string{"5000"}),
		f.rangeAttr(0),
	}}}}, nil
}

func TestRangedRetrieval(t *testing.T) {
	var members []string
	for i := range 3500 {
		members = append(members, fmt.Sprintf("CN=u%d,OU=Users,DC=ad", i))
	}
	cfg, err := Preset(PresetAD)
	if err != nil {
		t.Fatal(err)
	}
	cfg.GroupBaseDN, cfg.Timeout = "OU=Groups,DC=ad", time.Second
	f := &fakeAD{members: members, step: 1500}
	s := NewSession(&cfg, f)
	groups, err := s.Groups(context.Background(), cfg.GroupFilter)
	if err != nil {
		t.Fatalf("Groups() = %v", err)
	}
	if len(groups) != 1 {
		t.Fatalf("Groups() returned %d groups, want 1", len(groups))
	}
	if d := cmp.Diff(members, groups[0].Member); d != "" {
		t.Errorf("members after ranged retrieval (-want +got):\n%s", d)
	}
	wantReqs := []string{cfg.GroupFilter, "member;range=1500-*", "member;range=3000-*"}
	if d := cmp.Diff(wantReqs, f.requests); d != "" {
		t.Errorf("requests (-want +got):\n%s", d)
	}
	if s.Requests() != 3 {
		t.Errorf("Requests() = %d, want 3", s.Requests())
	}

	f = &fakeAD{members: members, step: 1500, fail: true}
	if _, err := NewSession(&cfg, f).Groups(context.Background(), cfg.GroupFilter); OpOf(err) != OpSearch {
		t.Errorf("Groups() with a failing range request = %v, want a search error (never a truncated group)", err)
	}
}

func TestParseRange(t *testing.T) {
	tests := []struct {
		name   string
		lo, hi int
		ok     bool
	}{
		{"member;range=0-1499", 0, 1499, true},
		{"Member;Range=1500-*", 1500, -1, true},
		{"member", 0, 0, false},
		{"memberOf;range=0-1", 0, 0, false},
		{"member;range=5-1", 0, 0, false},
	}
	for _, tt := range tests {
		lo, hi, ok := parseRange(tt.name, "member")
		if lo != tt.lo || hi != tt.hi || ok != tt.ok {
			t.Errorf("parseRange(%q) = %d, %d, %v, want %d, %d, %v", tt.name, lo, hi, ok, tt.lo, tt.hi, tt.ok)
		}
	}
}

// fixedSearcher returns the same entries for every search.
type fixedSearcher struct{ entries []*ldap.Entry }

func (f fixedSearcher) Search(*ldap.SearchRequest) (*ldap.SearchResult, error) {
	return &ldap.SearchResult{Entries: f.entries}, nil
}

// TestAttributeNamesCaseInsensitive proves attributes are read whatever case
// the server returns them in (the original tool lost memberOf and memberUid
// when a server echoed the lower-case names it had asked for).
func TestAttributeNamesCaseInsensitive(t *testing.T) {
	cfg, _ := Preset("")
	cfg.UserBaseDN, cfg.GroupBaseDN, cfg.Timeout = "dc=x", "dc=x", time.Second
	s := NewSession(&cfg, fixedSearcher{entries: []*ldap.Entry{{DN: "uid=a,dc=x", Attributes: []*ldap.EntryAttribute{
		ldap.NewEntryAttribute("UID", []string{"a"}),
		ldap.NewEntryAttribute("uidnumber", []string{"1"}),
		ldap.NewEntryAttribute("GIDNUMBER", []string{"2"}),
		ldap.NewEntryAttribute("homedirectory", []string{"/home/a"}),
		ldap.NewEntryAttribute("memberof", []string{"cn=g,dc=x"}),
		ldap.NewEntryAttribute("MEMBERUID", []string{"a"}),
	}}}})
	users, err := s.Users(context.Background(), cfg.UserFilter)
	if err != nil {
		t.Fatal(err)
	}
	want := []User{{DN: "uid=a,dc=x", Name: "a", UID: "1", GID: "2", Home: "/home/a", MemberOf: []string{"cn=g,dc=x"}}}
	if d := cmp.Diff(want, users); d != "" {
		t.Errorf("Users() (-want +got):\n%s", d)
	}
	cfg.Scheme = SchemeMemberUID
	groups, err := s.Groups(context.Background(), cfg.GroupFilter)
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != 1 || len(groups[0].MemberUID) != 1 {
		t.Errorf("Groups() = %+v, want memberUid read from MEMBERUID", groups)
	}
}

func TestPresets(t *testing.T) {
	tests := []struct {
		preset, scheme, userName, home string
	}{
		{"", SchemeMemberOf, "uid", "homeDirectory"},
		{PresetRFC2307, SchemeMemberUID, "uid", "homeDirectory"},
		{PresetRFC2307bis, SchemeMember, "uid", "homeDirectory"},
		{PresetAD, SchemeMember, "sAMAccountName", "unixHomeDirectory"},
	}
	for _, tt := range tests {
		c, err := Preset(tt.preset)
		if err != nil {
			t.Fatalf("Preset(%q) = %v", tt.preset, err)
		}
		if c.Scheme != tt.scheme || c.UserAttrs.Name != tt.userName || c.UserAttrs.Home != tt.home {
			t.Errorf("Preset(%q) = scheme %s, name %s, home %s; want %s, %s, %s", tt.preset, c.Scheme, c.UserAttrs.Name, c.UserAttrs.Home, tt.scheme, tt.userName, tt.home)
		}
	}
	if _, err := Preset("nis"); err == nil {
		t.Error(`Preset("nis") = nil error, want unknown preset`)
	}
}
