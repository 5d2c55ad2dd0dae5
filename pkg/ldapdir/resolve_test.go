package ldapdir

import (
	"strings"
	"testing"
	"unsafe"

	"github.com/go-ldap/ldap/v3"
	"github.com/google/go-cmp/cmp"
)

func TestResolve(t *testing.T) {
	cfg := &Config{Scheme: SchemeMember, Nested: true}
	u := func(dn, name, uid, gid string) User { return User{DN: dn, Name: name, UID: uid, GID: gid} }
	tests := []struct {
		name        string
		scheme      string
		nested      bool
		users       []User
		groups      []Group
		want        map[string]Identity
		wantSkipped []string
	}{
		{
			name: "nested cycle, DN case and spacing ignored", scheme: SchemeMember, nested: true,
			users: []User{u("uid=a,ou=p,dc=x", "a", "1", "1")},
			groups: []Group{
				{DN: "cn=g1,ou=g,dc=x", Name: "g1", GID: "101", Member: []string{"UID=A, OU=P, DC=X", "cn=g2,ou=g,dc=x"}},
				{DN: "cn=g2,ou=g,dc=x", Name: "g2", GID: "102", Member: []string{"CN=G1,ou=g,dc=x"}},
				{DN: "cn=g3,ou=g,dc=x", Name: "g3", GID: "103", Member: []string{"cn=g2,ou=g,dc=x"}},
			},
			want: map[string]Identity{"user-a": {User: "a", Namespace: "user-a", DN: "uid=a,ou=p,dc=x", UID: "1", GID: "1",
				GIDs: []string{"1", "101", "102", "103"}, Groups: []string{"g1", "g2", "g3"}}},
		},
		{
			name: "flat ignores nesting", scheme: SchemeMember,
			users: []User{u("uid=a,dc=x", "a", "1", "101")},
			groups: []Group{
				{DN: "cn=g1,dc=x", Name: "g1", GID: "101", Member: []string{"uid=a,dc=x"}},
				{DN: "cn=g2,dc=x", Name: "g2", GID: "102", Member: []string{"cn=g1,dc=x"}},
			},
			want: map[string]Identity{"user-a": {User: "a", Namespace: "user-a", DN: "uid=a,dc=x", UID: "1", GID: "101",
				GIDs: []string{"101"}, Groups: []string{"g1"}}},
		},
		{
			name: "memberuid case-insensitive, primary group named, numeric sort", scheme: SchemeMemberUID,
			users: []User{u("uid=Ann,dc=x", "Ann", "0010", "900")},
			groups: []Group{
				{DN: "cn=big,dc=x", Name: "big", GID: "1000", MemberUID: []string{"ann"}},
				{DN: "cn=small,dc=x", Name: "small", GID: "99", MemberUID: []string{"ANN"}},
				{DN: "cn=prim,dc=x", Name: "prim", GID: "900"},
			},
			want: map[string]Identity{"user-ann": {User: "Ann", Namespace: "user-ann", DN: "uid=Ann,dc=x", UID: "10", GID: "900",
				GIDs: []string{"99", "900", "1000"}, Groups: []string{"big", "prim", "small"}}},
		},
		{
			name: "memberof with nesting through groups' memberOf", scheme: SchemeMemberOf, nested: true,
			users: []User{{DN: "uid=a,dc=x", Name: "a", UID: "1", GID: "1", MemberOf: []string{"cn=g1,dc=x", "cn=outside,dc=y"}}},
			groups: []Group{
				{DN: "cn=g1,dc=x", Name: "g1", GID: "101", MemberOf: []string{"cn=g2,dc=x"}},
				{DN: "cn=g2,dc=x", Name: "g2", GID: "102", MemberOf: []string{"cn=g1,dc=x"}},
			},
			want: map[string]Identity{"user-a": {User: "a", Namespace: "user-a", DN: "uid=a,dc=x", UID: "1", GID: "1",
				GIDs: []string{"1", "101", "102"}, Groups: []string{"g1", "g2"}}},
		},
		{
			name: "bad entries skipped, the rest resolved", scheme: SchemeMemberUID,
			users: []User{
				u("uid=ok,dc=x", "ok", "1", "1"),
				u("uid=n,dc=x", "", "2", "2"),
				u("uid=x_y,dc=x", "x_y", "3", "3"),
				u("uid=nouid,dc=x", "nouid", "", "3"),
				u("uid=neg,dc=x", "neg", "-4", "4"),
				u("uid=big,dc=x", "big", "4294967296", "4"),
				u("uid=nogid,dc=x", "nogid", "5", ""),
				u("uid=badgid,dc=x", "badgid", "5", "x"),
				u("uid=d.d,dc=x", "d.d", "6", "6"),
				u("uid=d@d,dc=x", "d@d", "7", "7"),
			},
			groups: []Group{
				{DN: "cn=g,dc=x", Name: "g", GID: "101", MemberUID: []string{"ok"}},
				{DN: "cn=noname,dc=x", GID: "102", MemberUID: []string{"ok"}},
				{DN: "cn=comma,dc=x", Name: "a,b", GID: "103", MemberUID: []string{"ok"}},
				{DN: "cn=nogid,dc=x", Name: "nogid", MemberUID: []string{"ok"}},
				{DN: "cn=badgid,dc=x", Name: "badgid", GID: "1e3", MemberUID: []string{"ok"}},
			},
			want: map[string]Identity{"user-ok": {User: "ok", Namespace: "user-ok", DN: "uid=ok,dc=x", UID: "1", GID: "1",
				GIDs: []string{"1", "101"}, Groups: []string{"g", "nogid"}}},
			wantSkipped: []string{
				SkipGroupMissingName, SkipGroupInvalidName, SkipGroupInvalidGID,
				SkipMissingName, SkipInvalidUsername, SkipMissingUID, SkipInvalidUID, SkipInvalidUID,
				SkipMissingGID, SkipInvalidGID, SkipDuplicateKey, SkipDuplicateKey,
			},
		},
	}
	tests = append(tests, struct {
		name        string
		scheme      string
		nested      bool
		users       []User
		groups      []Group
		want        map[string]Identity
		wantSkipped []string
	}{
		name: "nested groupOfNames without gidNumber named, no GID", scheme: SchemeMember, nested: true,
		users: []User{u("uid=a,dc=x", "a", "1", "1")},
		groups: []Group{
			{DN: "cn=team,dc=x", Name: "team", Member: []string{"uid=a,dc=x"}},
			{DN: "cn=dept,dc=x", Name: "dept", Member: []string{"cn=team,dc=x"}},
			{DN: "cn=unix,dc=x", Name: "unix", GID: "200", Member: []string{"cn=dept,dc=x"}},
		},
		want: map[string]Identity{"user-a": {User: "a", Namespace: "user-a", DN: "uid=a,dc=x", UID: "1", GID: "1",
			GIDs: []string{"1", "200"}, Groups: []string{"dept", "team", "unix"}}},
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := *cfg
			c.Scheme, c.Nested = tt.scheme, tt.nested
			res := Resolve(&c, "user-", tt.users, tt.groups)
			if d := cmp.Diff(tt.want, res.Identities); d != "" {
				t.Errorf("Resolve() identities (-want +got):\n%s", d)
			}
			var reasons []string
			for _, s := range res.Skipped {
				reasons = append(reasons, s.Reason)
			}
			if d := cmp.Diff(tt.wantSkipped, reasons); d != "" {
				t.Errorf("Resolve() skip reasons (-want +got):\n%s", d)
			}
		})
	}
}

// TestResolveCollisions: names that map to one namespace (case, '.', '@'
// and '-'), a bad entry among them included, give no identity to any of
// them and are reported with every colliding name.
func TestResolveCollisions(t *testing.T) {
	u := func(dn, name, uid string) User { return User{DN: dn, Name: name, UID: uid, GID: uid} }
	res := Resolve(&Config{Scheme: SchemeMemberUID}, "user-", []User{
		u("uid=john.smith,dc=x", "john.smith", "1"), u("uid=john-smith,dc=x", "john-smith", "2"),
		u("uid=alice,dc=x", "alice", "3"), u("cn=other,dc=x", "Alice", ""), // a bad entry still collides
		u("uid=bob,dc=x", "bob", "4"),
	}, nil)
	if d := cmp.Diff(map[string][]string{"user-john-smith": {"john-smith", "john.smith"}, "user-alice": {"Alice", "alice"}}, res.Collisions); d != "" {
		t.Errorf("Resolve() collisions (-want +got):\n%s", d)
	}
	if len(res.Identities) != 1 || res.Identities["user-bob"].UID != "4" {
		t.Errorf("Resolve() identities = %v, want only user-bob", res.Identities)
	}
}

func TestAnnotations(t *testing.T) {
	got := Annotations(Identity{User: "john.smith", UID: "10003", GID: "10003", Home: "/home/john.smith",
		GIDs: []string{"10003", "20002"}, Groups: []string{"hpcusers", "pzs0002"}})
	want := map[string]string{
		"kubehpc.io/uid": "10003", "kubehpc.io/gid": "10003", "kubehpc.io/gids": ",10003,20002,",
		"kubehpc.io/groups": ",hpcusers,pzs0002,", "kubehpc.io/home": "/home/john.smith", "kubehpc.io/user": "john.smith",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Annotations() (-want +got):\n%s", d)
	}
}

// TestFastNormDN proves the fast path gives exactly ldap.ParseDN's
// normalised form, and leaves what it cannot handle to it.
func TestFastNormDN(t *testing.T) {
	for _, dn := range []string{
		"uid=alice,ou=people,dc=example,dc=org", "UID=Alice, OU=People, DC=Example,DC=org", "cn=John Smith,ou=people,dc=x",
		"uid=john.smith,dc=x", "uid=a@b.c,dc=x", "cn=a_b-c,dc=x", "uid=a ,ou=p , dc=x", " uid=a,dc=x",
		"uid = a,dc=x", "uid=,dc=x", "uid=a,,dc=x", "uid=a,dc=x,", "=a,dc=x", "uid=a=b,dc=x", "uid=a+cn=b,dc=x",
		`cn=a\,b,dc=x`, `cn="q",dc=x`, "cn=#41,dc=x", "cn=ü,dc=x", "uid=a;dc=x",
	} {
		slow := ""
		d, err := ldap.ParseDN(dn)
		if err == nil {
			for _, r := range d.RDNs {
				for _, a := range r.Attributes {
					a.Type, a.Value = strings.ToLower(a.Type), strings.ToLower(a.Value)
				}
			}
			slow = d.String()
		}
		if fast, ok := fastNormDN(dn); ok && (err != nil || fast != slow) {
			t.Errorf("fastNormDN(%q) = %q, want %q (ParseDN error %v)", dn, fast, slow, err)
		}
	}
	plain := "uid=alice,ou=people,dc=example,dc=org"
	got, ok := fastNormDN(plain)
	if !ok {
		t.Error("fastNormDN of a plain DN fell back to the slow path")
	}
	if unsafe.StringData(got) != unsafe.StringData(plain) {
		t.Error("fastNormDN of a canonical DN copied it, want the DN itself (one key per cached user)")
	}
}

// TestNumber proves number's canonical decimals, and that a canonical one
// is kept rather than copied (a UID and a GID per cached user).
func TestNumber(t *testing.T) {
	for in, want := range map[string]string{"1001": "1001", " 1001 ": "1001", "0": "0", "007": "7", "00": "0", "4294967295": "4294967295"} {
		if got, err := number(in); err != nil || got != want {
			t.Errorf("number(%q) = %q, %v, want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "+1", "-1", "1e3", "4294967296", "0x10", "1_000"} {
		if got, err := number(in); err == nil {
			t.Errorf("number(%q) = %q, want an error", in, got)
		}
	}
	in := "100001"
	if got, _ := number(in); unsafe.StringData(got) != unsafe.StringData(in) {
		t.Errorf("number(%q) copied a canonical decimal, want it kept", in)
	}
}
