package flagenv

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"
)

func TestApply(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		aliases  map[string]string
		wantURL  string
		wantInt  time.Duration
		wantList []string
		wantErr  bool
	}{
		{name: "defaults", wantURL: "ldap://default", wantInt: time.Minute, wantList: []string{"a"}},
		{name: "env beats default", env: map[string]string{"TOOL_LDAP_URL": "ldap://env", "TOOL_INTERVAL": "5m"},
			wantURL: "ldap://env", wantInt: 5 * time.Minute, wantList: []string{"a"}},
		{name: "flag beats env", args: []string{"--ldap-url=ldap://flag"}, env: map[string]string{"TOOL_LDAP_URL": "ldap://env"},
			wantURL: "ldap://flag", wantInt: time.Minute, wantList: []string{"a"}},
		{name: "alias", aliases: map[string]string{"LDAP_URL": "ldap-url"}, env: map[string]string{"LDAP_URL": "ldap://legacy"},
			wantURL: "ldap://legacy", wantInt: time.Minute, wantList: []string{"a"}},
		{name: "prefixed beats alias", aliases: map[string]string{"LDAP_URL": "ldap-url"},
			env:     map[string]string{"LDAP_URL": "ldap://legacy", "TOOL_LDAP_URL": "ldap://new"},
			wantURL: "ldap://new", wantInt: time.Minute, wantList: []string{"a"}},
		{name: "slice replaces default", env: map[string]string{"TOOL_NAMESPACES": "x,y"},
			wantURL: "ldap://default", wantInt: time.Minute, wantList: []string{"x", "y"}},
		{name: "bad value", env: map[string]string{"TOOL_INTERVAL": "soon"}, wantErr: true},
		{name: "unknown alias flag", aliases: map[string]string{"X": "nope"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
			url := fs.String("ldap-url", "ldap://default", "")
			interval := fs.Duration("interval", time.Minute, "")
			list := fs.StringSlice("namespaces", []string{"a"}, "")
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			err := Apply(fs, "tool", tt.aliases, func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok })
			if (err != nil) != tt.wantErr {
				t.Fatalf("Apply() error = %v, wantErr %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if *url != tt.wantURL || *interval != tt.wantInt {
				t.Errorf("Apply() gave url=%q interval=%v, want %q %v", *url, *interval, tt.wantURL, tt.wantInt)
			}
			if diff := cmp.Diff(tt.wantList, *list); diff != "" {
				t.Errorf("Apply() namespaces (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEnvName(t *testing.T) {
	if got, want := EnvName("job-pod-reaper", "max-deletions-per-pass"), "JOB_POD_REAPER_MAX_DELETIONS_PER_PASS"; got != want {
		t.Errorf("EnvName() = %q, want %q", got, want)
	}
}
