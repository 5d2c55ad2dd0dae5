package ldapdir

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// fakeUSN is a directory served the way Active Directory tracks changes:
// highestCommittedUSN on the root DSE, uSNChanged on every entry (or, with
// untracked, neither: a server without change tracking). It answers the
// searches the reader makes: the root DSE, a subtree search with an
// optional (uSNChanged>=N) clause, and DN-only ("1.1") searches.
type fakeUSN struct {
	untracked bool
	// failDNOnly fails the DN-only searches (a connection lost mid-read).
	failDNOnly bool
	usn        int
	entries    map[string]fakeEntry // DN -> entry
	filters    []string
}

type fakeEntry struct {
	attrs map[string][]string
	usn   int
}

func (f *fakeUSN) put(dn string, attrs map[string][]string) {
	f.usn++
	f.entries[dn] = fakeEntry{attrs: attrs, usn: f.usn}
}

func (f *fakeUSN) Search(req *ldap.SearchRequest) (*ldap.SearchResult, error) {
	if req.BaseDN == "" {
		e := &ldap.Entry{DN: ""}
		if !f.untracked {
			e.Attributes = append(e.Attributes, ldap.NewEntryAttribute("highestCommittedUSN", []string{strconv.Itoa(f.usn)}))
		}
		return &ldap.SearchResult{Entries: []*ldap.Entry{e}}, nil
	}
	f.filters = append(f.filters, req.Filter)
	if f.failDNOnly && len(req.Attributes) == 1 && req.Attributes[0] == "1.1" {
		return nil, errors.New("connection reset")
	}
	since := -1
	if i := strings.Index(req.Filter, "(uSNChanged>="); i >= 0 {
		fmt.Sscanf(req.Filter[i:], "(uSNChanged>=%d)", &since)
	}
	users := strings.Contains(req.Filter, "objectClass=user")
	res := &ldap.SearchResult{}
	for dn, e := range f.entries {
		if !strings.HasSuffix(dn, req.BaseDN) || (e.attrs["objectClass"][0] == "user") != users || e.usn < since {
			continue
		}
		out := &ldap.Entry{DN: dn}
		if len(req.Attributes) != 1 || req.Attributes[0] != "1.1" {
			for k, v := range e.attrs {
				out.Attributes = append(out.Attributes, ldap.NewEntryAttribute(k, v))
			}
			if !f.untracked {
				out.Attributes = append(out.Attributes, ldap.NewEntryAttribute("uSNChanged", []string{strconv.Itoa(e.usn)}))
			}
		}
		res.Entries = append(res.Entries, out)
	}
	return res, nil
}

func adUser(name, uid string) map[string][]string {
	return map[string][]string{"objectClass": {"user"}, "sAMAccountName": {name}, "uidNumber": {uid}, "gidNumber": {uid}}
}

// TestIncrementalUSN proves the Active Directory path against a fake (slapd
// has no uSNChanged): an unmoved highestCommittedUSN reads nothing, a change
// is read with (uSNChanged>=N) plus a DN-only search, and a server with no
// change tracking at all is read in full every time.
func TestIncrementalUSN(t *testing.T) {
	cfg, err := Preset(PresetAD)
	if err != nil {
		t.Fatal(err)
	}
	cfg.UserBaseDN, cfg.GroupBaseDN, cfg.Timeout = "OU=Users,DC=ad", "OU=Groups,DC=ad", time.Second
	views := []View{cfg.View()}
	ctx := context.Background()
	now := time.Unix(1e9, 0)
	for _, untracked := range []bool{false, true} {
		f := &fakeUSN{untracked: untracked, entries: map[string]fakeEntry{}}
		f.put("CN=a,OU=Users,DC=ad", adUser("a", "1"))
		f.put("CN=b,OU=Users,DC=ad", adUser("b", "2"))
		s := NewSession(&cfg, f)
		var cache Cache
		read := func(step string) ReadStats {
			t.Helper()
			snap, st, err := s.ReadCached(ctx, views, &cache, ReadOptions{Now: now, FullEvery: time.Hour})
			if err != nil {
				t.Fatalf("%s: ReadCached() = %v", step, err)
			}
			var names []string
			for _, u := range snap.Users[cfg.UserFilter] {
				names = append(names, u.Name+"="+u.UID)
			}
			var want []string
			for _, e := range f.entries {
				if e.attrs["objectClass"][0] == "user" {
					want = append(want, e.attrs["sAMAccountName"][0]+"="+e.attrs["uidNumber"][0])
				}
			}
			if strings.Join(sorted(names), " ") != strings.Join(sorted(want), " ") {
				t.Errorf("%s: users %v, want %v", step, names, want)
			}
			return st
		}
		if st := read("first"); !st.Full {
			t.Errorf("untracked %v: first read %+v, want full", untracked, st)
		}
		st := read("unchanged")
		switch {
		case untracked && (!st.Full || st.Reason != FullNoMarkers || st.Mode != TrackNone):
			t.Errorf("untracked: second read %+v, want full (%s) in mode %s", st, FullNoMarkers, TrackNone)
		case !untracked && !st.Unchanged:
			t.Errorf("second read %+v, want unchanged (highestCommittedUSN did not move)", st)
		}
		f.put("CN=a,OU=Users,DC=ad", adUser("a", "11"))
		f.filters = nil
		st = read("changed")
		if !untracked {
			if st.Full || st.Changed != 1 || st.Deleted != 0 {
				t.Errorf("after a change: %+v, want incremental, 1 changed", st)
			}
			if len(f.filters) == 0 || !strings.Contains(f.filters[0], "(uSNChanged>=") {
				t.Errorf("searches %q, want a (uSNChanged>=N) change search first", f.filters)
			}
		}
		delete(f.entries, "CN=b,OU=Users,DC=ad")
		f.usn++
		// The AD preset's member scheme refers to users by DN: a deletion
		// is read in full.
		if st := read("deleted"); !st.Full || (!untracked && st.Reason != FullReferences) {
			t.Errorf("untracked %v: after a deletion: %+v, want a full read", untracked, st)
		}
	}
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

// TestIncrementalReadFailureKeepsCache proves that an incremental read that
// fails half-way (the change search answered, the DN-only search did not)
// leaves the cache as it was: the next read still reports the change, in its
// delta too, which ResolveChanges depends on.
func TestIncrementalReadFailureKeepsCache(t *testing.T) {
	cfg, err := Preset(PresetAD)
	if err != nil {
		t.Fatal(err)
	}
	cfg.UserBaseDN, cfg.GroupBaseDN, cfg.Timeout = "OU=Users,DC=ad", "OU=Groups,DC=ad", time.Second
	views := []View{cfg.View()}
	ctx := context.Background()
	opts := ReadOptions{Now: time.Unix(1e9, 0), FullEvery: time.Hour}
	f := &fakeUSN{entries: map[string]fakeEntry{}}
	f.put("CN=a,OU=Users,DC=ad", adUser("a", "1"))
	f.put("CN=b,OU=Users,DC=ad", adUser("b", "2"))
	s := NewSession(&cfg, f)
	var cache Cache
	if _, _, err := s.ReadCached(ctx, views, &cache, opts); err != nil {
		t.Fatal(err)
	}
	f.put("CN=a,OU=Users,DC=ad", adUser("a", "11"))
	f.failDNOnly = true
	if _, _, err := s.ReadCached(ctx, views, &cache, opts); err == nil {
		t.Fatal("ReadCached() with the DN-only search failing succeeded, want an error")
	}
	f.failDNOnly = false
	snap, st, err := s.ReadCached(ctx, views, &cache, opts)
	if err != nil {
		t.Fatal(err)
	}
	if st.Full || st.Delta == nil {
		t.Fatalf("read after the failure: %+v, want incremental with a delta", st)
	}
	changes := st.Delta.Users[cfg.UserFilter]
	if len(changes) != 1 || changes[0].Old == nil || changes[0].Old.UID != "1" || changes[0].New == nil || changes[0].New.UID != "11" {
		t.Errorf("delta after the failure = %+v, want a's uid 1 -> 11", changes)
	}
	for _, u := range snap.Users[cfg.UserFilter] {
		if u.Name == "a" && u.UID != "11" {
			t.Errorf("snapshot: a's uid = %s, want 11", u.UID)
		}
	}
}
