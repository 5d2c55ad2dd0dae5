package app

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/kubehpc/kubehpc/pkg/daemon"
)

type fakeCmd struct {
	DryRun bool
	Filter string
}

func (c *fakeCmd) AddFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&c.DryRun, "dry-run", false, "Delete nothing")
	fs.StringVar(&c.Filter, "user-filter", "(objectClass=posixAccount)", "LDAP filter")
}
func (c *fakeCmd) Validate() error {
	if c.Filter == "" {
		return errors.New("--user-filter must not be empty")
	}
	return nil
}
func (c *fakeCmd) Build(context.Context, Env) (daemon.Pass, error) { return nil, nil }

func TestParse(t *testing.T) {
	tool := Tool{Name: "my-tool", MetricsNamespace: "my_tool", EnvAliases: map[string]string{"LDAP_FILTER": "user-filter"}}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    fakeCmd
		check   func(*Options) string
		wantErr string
	}{
		{name: "defaults", want: fakeCmd{Filter: "(objectClass=posixAccount)"},
			check: func(o *Options) string {
				if o.Daemon.Interval != 5*time.Minute || o.Daemon.Once || o.Log.Format != "auto" {
					return "unexpected defaults"
				}
				return ""
			}},
		{name: "flags", args: []string{"--dry-run", "--once", "--user-filter=(&(a=b)(c=d,e))"},
			want:  fakeCmd{DryRun: true, Filter: "(&(a=b)(c=d,e))"},
			check: func(o *Options) string { return map[bool]string{true: "", false: "--once not set"}[o.Daemon.Once] }},
		{name: "env and alias", env: map[string]string{"MY_TOOL_DRY_RUN": "true", "LDAP_FILTER": "(uid=*)", "MY_TOOL_INTERVAL": "1m"},
			want: fakeCmd{DryRun: true, Filter: "(uid=*)"},
			check: func(o *Options) string {
				return map[bool]string{true: "", false: "interval from env not applied"}[o.Daemon.Interval == time.Minute]
			}},
		{name: "flag beats env", args: []string{"--dry-run=false"}, env: map[string]string{"MY_TOOL_DRY_RUN": "true"},
			want: fakeCmd{Filter: "(objectClass=posixAccount)"}},
		{name: "tool validation", args: []string{"--user-filter="}, wantErr: "--user-filter must not be empty"},
		{name: "shared validation", args: []string{"--log-format=xml"}, wantErr: "--log-format"},
		{name: "bad env value", env: map[string]string{"MY_TOOL_DRY_RUN": "perhaps"}, wantErr: "MY_TOOL_DRY_RUN"},
		{name: "stray argument", args: []string{"alice"}, wantErr: "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := &fakeCmd{}
			var out bytes.Buffer
			o, err := Parse(tool, tt.args, func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }, &out, cmd)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse() error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse() error = %v", err)
			}
			if *cmd != tt.want {
				t.Errorf("Parse() command = %+v, want %+v", *cmd, tt.want)
			}
			if tt.check != nil {
				if msg := tt.check(o); msg != "" {
					t.Error(msg)
				}
			}
		})
	}
}

func TestHelpNamesEnvVars(t *testing.T) {
	var out bytes.Buffer
	_, err := Parse(Tool{Name: "my-tool"}, []string{"--help"}, func(string) (string, bool) { return "", false }, &out, &fakeCmd{})
	if !errors.Is(err, pflag.ErrHelp) {
		t.Fatalf("Parse(--help) error = %v, want ErrHelp", err)
	}
	for _, want := range []string{"--dry-run", "[$MY_TOOL_DRY_RUN]", "--leader-elect", "[$MY_TOOL_KUBECONFIG]"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestVersionFlag(t *testing.T) {
	noEnv := func(string) (string, bool) { return "", false }
	// --version needs no valid configuration (an empty filter fails Validate).
	if _, err := Parse(Tool{Name: "my-tool"}, []string{"--version", "--user-filter="}, noEnv, io.Discard, &fakeCmd{}); !errors.Is(err, ErrVersion) {
		t.Errorf("Parse(--version) error = %v, want ErrVersion", err)
	}
	// The environment never asks for the version, even with a value that is no bool.
	env := func(k string) (string, bool) { return "1.2.3", k == "MY_TOOL_VERSION" }
	if _, err := Parse(Tool{Name: "my-tool"}, nil, env, io.Discard, &fakeCmd{}); err != nil {
		t.Errorf("Parse with MY_TOOL_VERSION=1.2.3 error = %v, want nil", err)
	}
}
