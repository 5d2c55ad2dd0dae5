package apptest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"

	"github.com/kubehpc/kubehpc/pkg/app"
	"github.com/kubehpc/kubehpc/pkg/daemon"
)

var tool = app.Tool{Name: "my-tool", EnvPrefix: "MY_TOOL", MetricsNamespace: "my_tool"}

// cmd is a tool configuration; trap makes AddFlags set a default itself,
// the mistake ParseKeepsDefaults and BindKeepsDefaults catch.
type cmd struct {
	Workers int
	trap    bool
}

var unexported = cmp.AllowUnexported(cmd{})

func newCmd() *cmd     { return &cmd{Workers: 4} }
func newTrapCmd() *cmd { return &cmd{Workers: 4, trap: true} }

func (c *cmd) AddFlags(fs *pflag.FlagSet) {
	def := c.Workers
	if c.trap {
		def = 8
	}
	fs.IntVar(&c.Workers, "workers", def, "Parallel workers")
}
func (c *cmd) Validate() error { return nil }
func (c *cmd) Build(context.Context, app.Env) (daemon.Pass, error) {
	return daemon.PassFunc(func(context.Context) error { return nil }), nil
}

// recorder is a testing.TB that records failures instead of failing.
type recorder struct {
	testing.TB
	mu     sync.Mutex
	errors []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}
func (r *recorder) Fatalf(format string, args ...any) { r.Errorf(format, args...); r.FailNow() }
func (r *recorder) Fatal(args ...any)                 { r.Errorf("%s", fmt.Sprint(args...)); r.FailNow() }
func (r *recorder) FailNow()                          { panic(r) }

// run calls check with a recorder and returns what it recorded.
func run(t *testing.T, check func(testing.TB)) []string {
	t.Helper()
	r := &recorder{TB: t}
	func() {
		defer func() {
			if p := recover(); p != nil && p != r {
				panic(p)
			}
		}()
		check(r)
	}()
	return r.errors
}

func TestKeepsDefaults(t *testing.T) {
	tests := []struct {
		name  string
		check func(testing.TB)
		want  string
	}{
		{"parse, defaults in NewConfig", func(tb testing.TB) { ParseKeepsDefaults(tb, tool, newCmd, unexported) }, ""},
		{"parse, a default set in AddFlags", func(tb testing.TB) { ParseKeepsDefaults(tb, tool, newTrapCmd, unexported) }, "Parse(no flags) = NewConfig() with changes"},
		{"bind, defaults in NewConfig", func(tb testing.TB) { BindKeepsDefaults(tb, tool, newCmd, unexported) }, ""},
		{"bind, a default set in AddFlags", func(tb testing.TB) { BindKeepsDefaults(tb, tool, newTrapCmd, unexported) }, "parse(no flags) = NewConfig() with changes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := run(t, tt.check)
			if tt.want == "" && len(got) > 0 {
				t.Errorf("failures = %q, want none", got)
			}
			if tt.want != "" && (len(got) != 1 || !strings.Contains(got[0], tt.want)) {
				t.Errorf("failures = %q, want one containing %q", got, tt.want)
			}
		})
	}
}

func TestParse(t *testing.T) {
	c := newCmd()
	o := Parse(t, tool, []string{"--once"}, map[string]string{"MY_TOOL_WORKERS": "2"}, c)
	if c.Workers != 2 || !o.Daemon.Once {
		t.Errorf("Parse(--once, MY_TOOL_WORKERS=2) = workers %d, once %v; want 2, true", c.Workers, o.Daemon.Once)
	}
	if got := run(t, func(tb testing.TB) { Parse(tb, tool, []string{"--workers=x"}, nil, newCmd()) }); len(got) != 1 || !strings.Contains(got[0], "invalid argument") {
		t.Errorf("Parse(--workers=x) failures = %q, want one invalid argument", got)
	}
}

// TestHelp runs Help in a directory of its own: a missing golden file fails,
// update writes it, and a later --help that differs fails with the diff.
func TestHelp(t *testing.T) {
	t.Chdir(t.TempDir())
	if got := run(t, func(tb testing.TB) { Help(tb, tool, newCmd(), false) }); len(got) != 1 || !strings.Contains(got[0], "no such file") {
		t.Errorf("Help without %s: failures = %q, want the missing file", HelpGolden, got)
	}
	if err := os.Mkdir("testdata", 0o755); err != nil {
		t.Fatal(err)
	}
	if got := run(t, func(tb testing.TB) { Help(tb, tool, newCmd(), true) }); len(got) > 0 {
		t.Errorf("Help(update): failures = %q, want none", got)
	}
	b, err := os.ReadFile(filepath.FromSlash(HelpGolden))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "--workers int") || !strings.Contains(string(b), "MY_TOOL_WORKERS") {
		t.Errorf("%s = %q, want the --workers flag and its environment variable", HelpGolden, b)
	}
	if got := run(t, func(tb testing.TB) { Help(tb, tool, newCmd(), false) }); len(got) > 0 {
		t.Errorf("Help: failures = %q, want none", got)
	}
	if got := run(t, func(tb testing.TB) { Help(tb, tool, newTrapCmd(), false) }); len(got) != 1 || !strings.Contains(got[0], "--help differs") {
		t.Errorf("Help with another default: failures = %q, want the difference", got)
	}
}
