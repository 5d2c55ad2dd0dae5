package ldapidentity

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"

	"github.com/kubehpc/kubehpc/pkg/identity"
	"github.com/kubehpc/kubehpc/pkg/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, testenv.Options{LDAP: true}, &env)) }

func config(t *testing.T, password string, args ...string) Config {
	t.Helper()
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := NewConfig()
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	c.AddFlags(fs)
	base := []string{"--ldap-url", env.LDAP.URL, "--ldap-preset", "rfc2307", "--ldap-bind-dn", env.LDAP.BindDN, "--ldap-bind-password-file", pw,
		"--ldap-user-base-dn", "ou=people," + env.LDAP.Suffix, "--ldap-group-base-dn", "ou=groups," + env.LDAP.Suffix}
	if err := fs.Parse(append(base, args...)); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestLookup looks users up in the real slapd, over plain LDAP and ldaps
// with the CA verified.
func TestLookup(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name, user string
		args       []string
		want       map[string]string
	}{
		{name: "dotted name", user: "john.smith", want: map[string]string{
			identity.UserAnnotation: "john.smith", identity.UIDAnnotation: "10003", identity.GIDAnnotation: "10003",
			identity.GIDsAnnotation: ",10003,20002,20100,", identity.GroupsAnnotation: ",hpcusers,john.smith,pzs0002,",
			identity.HomeAnnotation: "/home/john.smith"}},
		{name: "ldaps", user: "bob", args: []string{"--ldap-url", env.LDAP.LDAPSURL, "--ldap-tls-ca-file", env.LDAP.CAFile}, want: map[string]string{
			identity.UserAnnotation: "bob", identity.UIDAnnotation: "10002", identity.GIDAnnotation: "10002",
			identity.GIDsAnnotation: ",10002,20001,20100,", identity.GroupsAnnotation: ",bob,hpcusers,pzs0001,",
			identity.HomeAnnotation: "/home/bob"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(config(t, env.LDAP.Password, tt.args...), "user-")
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Lookup(ctx, tt.user)
			if err != nil {
				t.Fatalf("Lookup(%s) = %v", tt.user, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Lookup(%s) (-want +got):\n%s", tt.user, diff)
			}
		})
	}
}

func TestLookupErrors(t *testing.T) {
	ctx := context.Background()
	s, err := New(config(t, env.LDAP.Password), "user-")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lookup(ctx, "mallory"); !errors.Is(err, ErrUserNotFound) {
		t.Errorf("Lookup(mallory) = %v, want ErrUserNotFound", err)
	}
	bad, err := New(config(t, "wrong"), "user-")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.Lookup(ctx, "alice"); err == nil || errors.Is(err, ErrUserNotFound) {
		t.Errorf("Lookup with a wrong password = %v, want a bind error (not 'not found')", err)
	}
}
