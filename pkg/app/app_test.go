package app

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/kubehpc/kubehpc/pkg/daemon"
	"github.com/kubehpc/kubehpc/pkg/events"
)

var myTool = Tool{Name: "my-tool", EnvPrefix: "MY_TOOL", MetricsNamespace: "my_tool"}

type fakeCmd struct {
	DryRun bool
	Filter string
	// env is what Build got.
	env Env
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
func (c *fakeCmd) Build(_ context.Context, env Env) (daemon.Pass, error) {
	c.env = env
	return daemon.PassFunc(func(context.Context) error { return nil }), nil
}

func TestParse(t *testing.T) {
	tool := Tool{Name: "my-tool", EnvPrefix: "MY_TOOL", MetricsNamespace: "my_tool", EnvAliases: map[string]string{"LDAP_FILTER": "user-filter"}}
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
			if cmd.DryRun != tt.want.DryRun || cmd.Filter != tt.want.Filter {
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
	_, err := Parse(myTool, []string{"--help"}, func(string) (string, bool) { return "", false }, &out, &fakeCmd{})
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
	if _, err := Parse(myTool, []string{"--version", "--user-filter="}, noEnv, io.Discard, &fakeCmd{}); !errors.Is(err, ErrVersion) {
		t.Errorf("Parse(--version) error = %v, want ErrVersion", err)
	}
	// The environment never asks for the version, even with a value that is no bool.
	env := func(k string) (string, bool) { return "1.2.3", k == "MY_TOOL_VERSION" }
	if _, err := Parse(myTool, nil, env, io.Discard, &fakeCmd{}); err != nil {
		t.Errorf("Parse with MY_TOOL_VERSION=1.2.3 error = %v, want nil", err)
	}
}

func TestParseNeedsACompleteTool(t *testing.T) {
	noEnv := func(string) (string, bool) { return "", false }
	for _, tool := range []Tool{{Name: "my-tool", MetricsNamespace: "my_tool"}, {Name: "my-tool", EnvPrefix: "MY_TOOL"}, {EnvPrefix: "MY_TOOL", MetricsNamespace: "my_tool"}} {
		if _, err := Parse(tool, nil, noEnv, io.Discard, &fakeCmd{}); err == nil || !strings.Contains(err.Error(), "are required") {
			t.Errorf("Parse(%+v) error = %v, want one saying Name, EnvPrefix and MetricsNamespace are required", tool, err)
		}
	}
}

// TestRunChoosesRecorder runs the wiring (no API server is contacted: the
// pass does nothing) and checks the Event recorder Run hands to Build:
// synchronous with --once, so the Events are written before the process
// exits, the broadcaster for a daemon.
func TestRunChoosesRecorder(t *testing.T) {
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`), 0o600); err != nil {
		t.Fatal(err)
	}
	noEnv := func(string) (string, bool) { return "", false }
	for _, tt := range []struct {
		name string
		args []string
		sync bool
	}{
		{"once", []string{"--once"}, true},
		{"daemon", nil, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			if !tt.sync {
				cancel() // the daemon stops at once
			}
			defer cancel()
			cmd := &fakeCmd{}
			args := append([]string{"--kubeconfig=" + kubeconfig, "--admin-address=", "--api-probe-interval=0", "--log-level=error"}, tt.args...)
			if err := Run(ctx, myTool, args, noEnv, io.Discard, cmd); err != nil {
				t.Fatalf("Run(%v) = %v", args, err)
			}
			_, isSync := cmd.env.Recorder.(*events.SyncRecorder)
			if cmd.env.Recorder == nil || isSync != tt.sync {
				t.Errorf("Run(%v) gave Build the recorder %T, want synchronous %v", args, cmd.env.Recorder, tt.sync)
			}
			if cmd.env.EventRecorder(myTool) != cmd.env.Recorder {
				t.Errorf("Env.EventRecorder() is not the recorder Run chose")
			}
		})
	}
	// A hand-built Env (a test calling Build) gets a synchronous recorder.
	if _, ok := (Env{}).EventRecorder(myTool).(*events.SyncRecorder); !ok {
		t.Errorf("Env{}.EventRecorder() is %T, want *events.SyncRecorder", (Env{}).EventRecorder(myTool))
	}
}
