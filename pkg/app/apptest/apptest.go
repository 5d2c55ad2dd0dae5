// Package apptest holds the checks every tool's configuration tests make
// through app.Parse: the flags' defaults live in the tool's NewConfig, and
// --help matches the golden testdata/help.txt. A tool's test calls them with
// its Tool and NewConfig and keeps its own assertions about its fields.
package apptest

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"

	"github.com/kubehpc/kubehpc/pkg/app"
	"github.com/kubehpc/kubehpc/pkg/testenv"
)

// HelpGolden is where Help keeps a tool's --help, relative to the test's
// package directory.
const HelpGolden = "testdata/help.txt"

// Lookup returns an environment lookup reading env (nil: an empty
// environment), for app.Parse and app.Run.
func Lookup(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

// NoEnv is the lookup of an empty environment.
func NoEnv(string) (string, bool) { return "", false }

// Parse parses args and env into cmd through app.Parse, as main does, and
// fails t on an error.
func Parse(t testing.TB, tool app.Tool, args []string, env map[string]string, cmd app.Command) *app.Options {
	t.Helper()
	o, err := app.Parse(tool, args, Lookup(env), io.Discard, cmd)
	if err != nil {
		t.Fatalf("Parse(%q) = %v", args, err)
	}
	return o
}

// ParseKeepsDefaults checks that the defaults live in newConfig and that
// AddFlags only binds the flags to them: app.Parse of no flags and an empty
// environment leaves newConfig() equal to a fresh newConfig() (compared with
// opts, e.g. cmpopts.IgnoreUnexported(Config{})).
func ParseKeepsDefaults[C app.Command](t testing.TB, tool app.Tool, newConfig func() C, opts ...cmp.Option) {
	t.Helper()
	c := newConfig()
	Parse(t, tool, nil, nil, c)
	if diff := cmp.Diff(newConfig(), c, opts...); diff != "" {
		t.Errorf("Parse(no flags) = NewConfig() with changes (-want +got):\n%s", diff)
	}
}

// BindKeepsDefaults is ParseKeepsDefaults for the tool's own flags only:
// AddFlags on a bare flag set and a parse of no arguments, without
// Validate, for a tool that cannot run without flags that have no default
// (ldap-configmap's LDAP server and bases).
func BindKeepsDefaults[C app.Command](t testing.TB, tool app.Tool, newConfig func() C, opts ...cmp.Option) {
	t.Helper()
	c := newConfig()
	fs := pflag.NewFlagSet(tool.Name, pflag.ContinueOnError)
	c.AddFlags(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(newConfig(), c, opts...); diff != "" {
		t.Errorf("parse(no flags) = NewConfig() with changes (-want +got):\n%s", diff)
	}
}

// Help compares the --help of tool with cmd's flags, defaults included, with
// HelpGolden; update (the test binary's -update flag) rewrites the file
// first.
func Help(t testing.TB, tool app.Tool, cmd app.Command, update bool) {
	t.Helper()
	var out bytes.Buffer
	if _, err := app.Parse(tool, []string{"--help"}, NoEnv, &out, cmd); !errors.Is(err, pflag.ErrHelp) {
		t.Fatalf("Parse(--help) error = %v, want ErrHelp", err)
	}
	if diff := cmp.Diff(testenv.Golden(t, HelpGolden, out.String(), update), out.String()); diff != "" {
		t.Errorf("--help differs from %s (-want +got):\n%s", HelpGolden, diff)
	}
}
