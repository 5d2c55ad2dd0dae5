package ldapdir

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/kubehpc/kubehpc/pkg/testenv"
)

// readerConfig reads s as its size-limited reader, paging by 2.
func readerConfig(s *testenv.Slapd, scheme string) *Config {
	c, _ := Preset("")
	c.URL, c.BindDN, c.BindPassword = s.URL, s.ReaderDN, s.ReaderPassword
	c.ConnectTimeout, c.Timeout, c.Paged, c.PageSize = 5*time.Second, 10*time.Second, true, 2
	c.UserBaseDN, c.GroupBaseDN = "ou=people,"+s.Suffix, "ou=groups,"+s.Suffix
	c.Scheme = scheme
	if scheme != SchemeMemberUID {
		c.GroupBaseDN, c.GroupFilter = "ou=projects,"+s.Suffix, "(objectClass=groupOfNames)"
		c.Nested = true
	}
	return &c
}

// TestPagingForced proves the tests' reader is held to the size limit: an
// unpaged read of the 5 seed users fails, a paged one reads them all.
func TestPagingForced(t *testing.T) {
	c := readerConfig(env.LDAP, SchemeMemberUID)
	c.Paged = false
	if _, _, err := ReadAll(context.Background(), c, []View{c.View()}); err == nil {
		t.Fatal("unpaged read as the reader succeeded, want a size limit error (paging is not forced)")
	}
	c.Paged = true
	snap, reqs, err := ReadAll(context.Background(), c, []View{c.View()})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(snap.Users[c.UserFilter]); got != 5 || reqs < 3 {
		t.Errorf("paged read: %d users in %d requests, want 5 users in at least 3 pages", got, reqs)
	}
}

// TestIncrementalMatchesFull changes a user, a group's membership, deletes
// a user, renames one and adds one between incremental reads, and compares
// every result with a full read of the same directory, with and without
// OpenLDAP's contextCSN marker, under the memberuid and member schemes.
func TestIncrementalMatchesFull(t *testing.T) {
	for _, tt := range []struct {
		name     string
		syncProv bool
		scheme   string
		wantMode string
	}{
		{name: "contextCSN memberuid", syncProv: true, scheme: SchemeMemberUID, wantMode: TrackCSN},
		{name: "entryCSN only member", scheme: SchemeMember, wantMode: TrackCSN},
		{name: "contextCSN memberof", syncProv: true, scheme: SchemeMemberOf, wantMode: TrackCSN},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s, err := testenv.StartSlapd(ctx, testenv.SlapdOptions{Reader: true, SizeLimit: 3, SyncProv: tt.syncProv})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Stop()
			cfg := readerConfig(s, tt.scheme)
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			views := cfg.IdentityViews().List()
			b := views[0]
			var cache Cache
			var prev Result // ResolveChanges' result, carried from step to step
			resolved := 0   // how many users the last ResolveChanges resolved
			now := time.Unix(1e9, 0)
			opts := []cmp.Option{cmpopts.EquateEmpty(), cmpopts.SortSlices(func(a, b Skip) bool { return a.DN < b.DN }), cmpopts.IgnoreUnexported(Result{})}
			read := func(step string) (ReadStats, int64) {
				t.Helper()
				snap, st, reqs, err := ReadCached(ctx, cfg, views, &cache, ReadOptions{Now: now, FullEvery: time.Hour})
				if err != nil {
					t.Fatalf("%s: ReadCached() = %v", step, err)
				}
				full, _, err := ReadAll(ctx, cfg, views)
				if err != nil {
					t.Fatal(err)
				}
				got := Resolve(cfg, "user-", snap.Users[b.UserFilter], snap.Groups[b.GroupFilter])
				want := Resolve(cfg, "user-", full.Users[b.UserFilter], full.Groups[b.GroupFilter])
				if d := cmp.Diff(want, got, opts...); d != "" {
					t.Errorf("%s: incremental read's result differs from a full read (-full +incremental):\n%s", step, d)
				}
				if st.Delta != nil && (st.Full || st.Unchanged) {
					t.Errorf("%s: %+v carries a delta", step, st)
				}
				inc := got
				if st.Delta != nil {
					inc = ResolveChanges(cfg, "user-", b, prev, snap, st.Delta)
					resolved = inc.resolved
					if d := cmp.Diff(want, inc, opts...); d != "" {
						t.Errorf("%s: ResolveChanges differs from resolving a full read (-full +changes):\n%s", step, d)
					}
				}
				prev = inc
				return st, reqs
			}
			if st, _ := read("first"); !st.Full || st.Reason != FullFirst || st.Mode != tt.wantMode {
				t.Errorf("first read: %+v, want full (%s) in mode %s", st, FullFirst, tt.wantMode)
			}
			st, reqs := read("nothing changed")
			if st.Full || st.Changed != 0 || st.Deleted != 0 {
				t.Errorf("nothing changed: %+v, want an incremental read with no change", st)
			}
			if tt.syncProv && (!st.Unchanged || reqs != 2) {
				t.Errorf("nothing changed with contextCSN: %+v in %d requests, want unchanged in 2 (root DSE, contextCSN)", st, reqs)
			}
			member, erin := "memberUid: dave", "memberUid: erin"
			group, small, other := "cn=pzs0001,ou=groups,", "cn=pzs0004,ou=groups,", "cn=pzs0005,ou=groups,"
			badGroup := "objectClass: posixGroup\ncn: bad group\ngidNumber: 20999\n"
			if tt.scheme != SchemeMemberUID {
				badGroup = "objectClass: groupOfNames\ncn: bad group\nmember: uid=dave,ou=people," + s.Suffix + "\n"
				member, group = "member: uid=dave,ou=people,"+s.Suffix, "cn=proj-c,ou=projects,"
				erin, small, other = "member: uid=erin,ou=people,"+s.Suffix, "cn=proj-b,ou=projects,", "cn=proj-c,ou=projects,"
			}
			steps := []struct{ name, ldif string }{
				{"user changed", "dn: uid=alice,ou=people," + s.Suffix + "\nchangetype: modify\nreplace: uidNumber\nuidNumber: 11001\n"},
				{"group membership changed", "dn: " + group + s.Suffix + "\nchangetype: modify\nadd: " + member[:strings.Index(member, ":")] + "\n" + member + "\n"},
				{"user deleted", "dn: uid=bob,ou=people," + s.Suffix + "\nchangetype: delete\n"},
				{"user renamed", "dn: uid=carol,ou=people," + s.Suffix + "\nchangetype: modrdn\nnewrdn: uid=caroline\ndeleteoldrdn: 1\n"},
				{"user added", "dn: uid=erin,ou=people," + s.Suffix + "\nchangetype: add\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\n" +
					"uid: erin\ncn: Erin\nsn: E\nuidNumber: 10009\ngidNumber: 10009\nhomeDirectory: /home/erin\n"},
				// A group skipped for its name, kept skipped once through the changes below.
				{"bad group added", "dn: cn=bad group," + small[strings.Index(small, ",")+1:] + s.Suffix + "\nchangetype: add\n" + badGroup},
				// erin joins a group no one else resolved is in.
				{"member added to a small group", "dn: " + small + s.Suffix + "\nchangetype: modify\nadd: " + erin[:strings.Index(erin, ":")] + "\n" + erin + "\n"},
				// A group erin is not in takes her primary GID: its name joins hers.
				{"group GID changed", "dn: " + other + s.Suffix + "\nchangetype: modify\nreplace: gidNumber\ngidNumber: 10009\n"},
				// A group nests in another: its members (nested ones too) gain it.
				{"group nested", "dn: " + group + s.Suffix + "\nchangetype: modify\nadd: member\nmember: " + small + s.Suffix + "\n"},
				// ERIN maps to erin's namespace: both are refused, then erin is back.
				{"colliding user added", "dn: uid=erin2,ou=people," + s.Suffix + "\nchangetype: add\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\n" +
					"uid: ERIN\ncn: Erin\nsn: E\nuidNumber: 10010\ngidNumber: 10010\nhomeDirectory: /home/erin2\n"},
				{"colliding user deleted", "dn: uid=erin2,ou=people," + s.Suffix + "\nchangetype: delete\n"},
			}
			if tt.scheme == SchemeMemberUID {
				steps = slices.DeleteFunc(steps, func(s struct{ name, ldif string }) bool { return s.name == "group nested" })
			}
			// Users ResolveChanges resolves again (of the 5 or 6 the
			// directory holds), where the step is read incrementally.
			wantResolved := map[string]int{"user changed": 1, "user added": 1, "colliding user added": 2}
			if tt.scheme == SchemeMemberUID {
				wantResolved["member added to a small group"] = 1 // erin (its member carol is caroline now)
				wantResolved["group GID changed"] = 1             // erin, by her GID
				wantResolved["colliding user deleted"] = 1        // erin; ERIN is gone
			} else {
				// erin, caroline (a member) and alice (in proj-a, nested in proj-b).
				wantResolved["member added to a small group"] = 3
				// erin by her GID, john.smith and dave (members).
				wantResolved["group GID changed"] = 3
			}
			for _, step := range steps {
				if err := s.Modify(ctx, step.ldif); err != nil {
					t.Fatal(err)
				}
				st, _ := read(step.name)
				wantFull := ""
				switch {
				case tt.scheme != SchemeMemberUID && (step.name == "user deleted" || step.name == "user renamed" || step.name == "colliding user deleted"):
					wantFull = FullReferences
				case tt.scheme == SchemeMemberOf && strings.Contains(step.name, "group"):
					wantFull = FullMemberOf
				}
				if st.Full != (wantFull != "") || st.Reason != wantFull {
					t.Errorf("%s: %+v, want full %v (reason %q)", step.name, st, wantFull != "", wantFull)
				}
				if want, ok := wantResolved[step.name]; ok && wantFull == "" && resolved != want {
					t.Errorf("%s: ResolveChanges resolved %d users, want %d", step.name, resolved, want)
				}
			}
			now = now.Add(time.Hour)
			if st, _ := read("interval"); !st.Full || st.Reason != FullInterval {
				t.Errorf("after the full resync interval: %+v, want a full read (%s)", st, FullInterval)
			}
		})
	}
}
