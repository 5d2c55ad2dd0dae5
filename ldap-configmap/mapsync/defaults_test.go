package mapsync

import (
	"flag"
	"testing"

	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/kubehpc/kubehpc/pkg/app/apptest"
)

var update = flag.Bool("update", false, "rewrite testdata/help.txt from the current --help")

// TestNewConfigIsTheFlagDefaults: the defaults live in NewConfig, and
// AddFlags only binds the flags to them, so parsing no flags changes nothing
// (the tool's own flags: the LDAP server and bases have no default, so a run
// needs them) and a field set before parsing keeps every other default.
func TestNewConfigIsTheFlagDefaults(t *testing.T) {
	apptest.BindKeepsDefaults(t, tool, NewConfig, cmpopts.IgnoreUnexported(Config{}))
	c := NewConfig()
	c.Workers = 2
	c.TLSVerify = false // pkg/ldapdir's AddFlags once forced it back to true
	ldap := []string{"--ldap-url=ldap://ldap.example.org", "--ldap-user-base-dn=ou=people,dc=example,dc=org", "--ldap-group-base-dn=ou=groups,dc=example,dc=org"}
	apptest.Parse(t, tool, ldap, nil, c)
	if c.Workers != 2 || c.TLSVerify || c.MaxDropFraction != 0.1 || c.Namespace != DefaultNamespace || !c.Paged {
		t.Errorf("Parse(NewConfig() with Workers and TLSVerify) = workers %d, TLS verify %v, max drop %v, namespace %q, paged %v; want 2, false, 0.1, %q, true",
			c.Workers, c.TLSVerify, c.MaxDropFraction, c.Namespace, c.Paged, DefaultNamespace)
	}
}

// TestHelp compares --help, defaults included, with testdata/help.txt (the
// output before the defaults moved into NewConfig); -update rewrites it.
func TestHelp(t *testing.T) {
	apptest.Help(t, tool, NewConfig(), *update)
}
