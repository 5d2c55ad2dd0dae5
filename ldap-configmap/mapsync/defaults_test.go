package mapsync

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/spf13/pflag"

	"github.com/kubehpc/kubehpc/pkg/app"
)

var update = flag.Bool("update", false, "rewrite testdata/help.txt from the current --help")

func noEnv(string) (string, bool) { return "", false }

// TestNewConfigIsTheFlagDefaults: the defaults live in NewConfig, and
// AddFlags only binds the flags to them, so parsing no flags changes nothing
// (the tool's own flags: the LDAP server and bases have no default, so a run
// needs them) and a field set before parsing keeps every other default.
func TestNewConfigIsTheFlagDefaults(t *testing.T) {
	c := NewConfig()
	fs := pflag.NewFlagSet(Tool.Name, pflag.ContinueOnError)
	c.AddFlags(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(NewConfig(), c, cmpopts.IgnoreUnexported(Config{})); diff != "" {
		t.Errorf("parse(no flags) = NewConfig() with changes (-want +got):\n%s", diff)
	}
	c = NewConfig()
	c.Workers = 2
	c.TLSVerify = false // pkg/ldapdir's AddFlags once forced it back to true
	ldap := []string{"--ldap-url=ldap://ldap.example.org", "--ldap-user-base-dn=ou=people,dc=example,dc=org", "--ldap-group-base-dn=ou=groups,dc=example,dc=org"}
	if _, err := app.Parse(tool, ldap, noEnv, io.Discard, c); err != nil {
		t.Fatal(err)
	}
	if c.Workers != 2 || c.TLSVerify || c.MaxDropFraction != 0.1 || c.Namespace != DefaultNamespace || !c.Paged {
		t.Errorf("Parse(NewConfig() with Workers and TLSVerify) = workers %d, TLS verify %v, max drop %v, namespace %q, paged %v; want 2, false, 0.1, %q, true",
			c.Workers, c.TLSVerify, c.MaxDropFraction, c.Namespace, c.Paged, DefaultNamespace)
	}
}

// TestHelp compares --help, defaults included, with testdata/help.txt (the
// output before the defaults moved into NewConfig); -update rewrites it.
func TestHelp(t *testing.T) {
	var out bytes.Buffer
	if _, err := app.Parse(tool, []string{"--help"}, noEnv, &out, NewConfig()); !errors.Is(err, pflag.ErrHelp) {
		t.Fatalf("Parse(--help) error = %v, want ErrHelp", err)
	}
	golden := filepath.Join("testdata", "help.txt")
	if *update {
		if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), out.String()); diff != "" {
		t.Errorf("--help differs from %s (-want +got):\n%s", golden, diff)
	}
}
