package ldapdir

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kubehpc/kubehpc/pkg/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	// A reader held to a size limit of 3 (the seed has 5 users): every
	// search must page to see them all.
	os.Exit(testenv.Main(m, testenv.Options{LDAP: true, SlapdOptions: testenv.SlapdOptions{Reader: true, SizeLimit: 3}}, &env))
}

// TestLookupUserMatchesFullSync proves that looking up one user (what
// namespace-bootstrap does at login) gives exactly the identity the full sync
// computes, under every scheme, with nesting and per-mapper filters.
func TestLookupUserMatchesFullSync(t *testing.T) {
	base := func() Config {
		c, _ := Preset("")
		c.URL, c.BindDN, c.BindPassword = env.LDAP.URL, env.LDAP.ReaderDN, env.LDAP.ReaderPassword
		c.ConnectTimeout, c.Timeout, c.Paged, c.PageSize = 5*time.Second, 10*time.Second, true, 2
		c.UserBaseDN, c.GroupBaseDN = "ou=people,dc=example,dc=org", "ou=groups,dc=example,dc=org"
		return c
	}
	projects := func(scheme string, nested bool) Config {
		c := base()
		c.Scheme, c.Nested = scheme, nested
		c.GroupBaseDN, c.GroupFilter = "ou=projects,dc=example,dc=org", "(objectClass=groupOfNames)"
		return c
	}
	type test struct {
		cfg Config
		// views narrow the global filters (ldap-configmap's per-mapper
		// filters); zero uses the global filters everywhere.
		views IdentityViews
	}
	memberUID := func() Config { c := base(); c.Scheme = SchemeMemberUID; return c }
	tests := map[string]test{
		"memberuid":       {cfg: memberUID()},
		"member nested":   {cfg: projects(SchemeMember, true)},
		"member flat":     {cfg: projects(SchemeMember, false)},
		"memberof nested": {cfg: projects(SchemeMemberOf, true)},
		"memberuid with views": {cfg: memberUID(), views: IdentityViews{
			Base:   View{UserFilter: "(&(objectClass=posixAccount)(!(uid=bob)))", GroupFilter: "(objectClass=posixGroup)"},
			GIDs:   View{UserFilter: "(objectClass=posixAccount)", GroupFilter: "(objectClass=posixGroup)"},
			Groups: View{UserFilter: "(objectClass=posixAccount)", GroupFilter: "(&(objectClass=posixGroup)(cn=pzs*))"},
		}},
	}
	ctx := context.Background()
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			cfg, views := tt.cfg, tt.views
			if views == (IdentityViews{}) {
				views = cfg.IdentityViews()
			}
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			b, g, n := views.Base, views.GIDs, views.Groups
			snap, _, err := ReadAll(ctx, &cfg, views.List())
			if err != nil {
				t.Fatal(err)
			}
			res := func(v View) Result {
				return Resolve(&cfg, "user-", snap.Users[v.UserFilter], snap.Groups[v.GroupFilter])
			}
			full := AnnotationIdentities(res(b), res(g), res(n))
			if len(full) < 4 {
				t.Fatalf("full sync found %d users, want at least 4", len(full))
			}
			for _, user := range []string{"alice", "bob", "john.smith", "carol", "dave"} {
				got, err := LookupUser(ctx, &cfg, views, "user-", user)
				want, inFull := full[mustKey(t, user)]
				if !inFull {
					if !errors.Is(err, ErrNotFound) {
						t.Errorf("LookupUser(%s) = %v, %v; want ErrNotFound (filtered out of the full sync)", user, got, err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("LookupUser(%s) = %v", user, err)
				}
				if d := cmp.Diff(Annotations(want), Annotations(got)); d != "" {
					t.Errorf("LookupUser(%s) annotations differ from the full sync (-full +lookup):\n%s", user, d)
				}
			}
			if _, err := LookupUser(ctx, &cfg, views, "user-", "nobody"); !errors.Is(err, ErrNotFound) {
				t.Errorf("LookupUser(nobody) = %v, want ErrNotFound", err)
			}
		})
	}
}

func mustKey(t *testing.T, user string) string {
	t.Helper()
	m := map[string]string{"alice": "user-alice", "bob": "user-bob", "john.smith": "user-john-smith", "carol": "user-carol", "dave": "user-dave"}
	return m[user]
}
