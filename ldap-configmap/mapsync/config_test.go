package mapsync

import (
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/kubehpc/kubehpc/pkg/app"
	"github.com/kubehpc/kubehpc/pkg/ldapdir"
)

var tool = Tool.WithVersion("test")

func TestParse(t *testing.T) {
	env := map[string]string{
		"LDAP_URL":                               "ldaps://ldap.example.org",
		"LDAP_BIND_DN":                           "cn=reader,dc=example,dc=org",
		"LDAP_CONFIGMAP_LDAP_BIND_PASSWORD_FILE": "/secrets/password",
		"LDAP_USER_BASE_DN":                      "ou=people,dc=example,dc=org",
		"LDAP_GROUP_BASE_DN":                     "ou=groups,dc=example,dc=org",
		"LDAP_MEMBER_SCHEME":                     "member",
		// The legacy comma-joined form with a comma inside a filter.
		"MAPPERS_GROUP_FILTER": "user-gids=(objectClass=posixGroup),user-groups=(&(objectClass=posixGroup)(memberOf=cn=active,ou=groups,dc=example,dc=org))",
		"INTERLVAL":            "10m",
		"MAPPERS":              "user-uid,user-gids,user-groups",
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	c := NewConfig()
	o, err := app.Parse(tool, []string{"--namespace=policies", "--namespace-annotations", "--max-drop-fraction=0.25",
		"--mappers-user-filter=user-uid=(&(objectClass=posixAccount)(!(nsAccountLock=TRUE)))", "--once"}, lookup, io.Discard, c)
	if err != nil {
		t.Fatalf("Parse() = %v", err)
	}
	if !o.Daemon.Once || o.Daemon.Interval != 10*time.Minute {
		t.Errorf("daemon options = %+v, want once and the legacy INTERLVAL of 10m", o.Daemon)
	}
	if c.URL != "ldaps://ldap.example.org" || c.BindDN != "cn=reader,dc=example,dc=org" || c.BindPasswordFile != "/secrets/password" ||
		c.Namespace != "policies" || !c.NamespaceAnnotations || c.MaxDropFraction != 0.25 || c.Scheme != "member" ||
		!c.Paged || c.PageSize != 500 || !c.TLSVerify || c.UserPrefix != "user-" {
		t.Errorf("parsed config = %+v", c)
	}
	if d := cmp.Diff([]string{"user-uid", "user-gids", "user-groups"}, c.Mappers); d != "" {
		t.Errorf("mappers (-want +got):\n%s", d)
	}
	d, err := c.directory(false)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]ldapdir.View{
		"user-gids":   {GroupFilter: "(objectClass=posixGroup)"},
		"user-groups": {GroupFilter: "(&(objectClass=posixGroup)(memberOf=cn=active,ou=groups,dc=example,dc=org))"},
		"user-uid":    {UserFilter: "(&(objectClass=posixAccount)(!(nsAccountLock=TRUE)))"},
	}
	if diff := cmp.Diff(want, d.Overrides); diff != "" {
		t.Errorf("filter overrides (-want +got):\n%s", diff)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no URL", []string{"--ldap-user-base-dn=dc=x", "--ldap-group-base-dn=dc=x"}, "the LDAP URL is required"},
		{"bad mapper", []string{"--ldap-url=ldap://x", "--ldap-user-base-dn=dc=x", "--ldap-group-base-dn=dc=x", "--mappers=user-shell"}, `unknown mapper "user-shell"`},
		{"bad filter", []string{"--ldap-url=ldap://x", "--ldap-user-base-dn=dc=x", "--ldap-group-base-dn=dc=x", "--mappers-group-filter=user-gids=(cn=x"}, "LDAP filter"},
		{"half a bind", []string{"--ldap-url=ldap://x", "--ldap-user-base-dn=dc=x", "--ldap-group-base-dn=dc=x", "--ldap-bind-dn=cn=a"}, "bind DN and the bind password"},
		{"bad scheme", []string{"--ldap-url=ldap://x", "--ldap-user-base-dn=dc=x", "--ldap-group-base-dn=dc=x", "--ldap-member-scheme=nis"}, `member scheme "nis"`},
		{"bad attr map", []string{"--ldap-url=ldap://x", "--ldap-user-base-dn=dc=x", "--ldap-group-base-dn=dc=x", "--ldap-user-attr-map=shell=loginShell"}, `attribute map key "shell"`},
		{"nothing to do", []string{"--ldap-url=ldap://x", "--ldap-user-base-dn=dc=x", "--ldap-group-base-dn=dc=x", "--mappers="}, "nothing to do"},
		{"StartTLS on ldaps", []string{"--ldap-url=ldaps://x", "--ldap-tls", "--ldap-user-base-dn=dc=x", "--ldap-group-base-dn=dc=x"}, "StartTLS cannot"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := app.Parse(tool, tt.args, func(string) (string, bool) { return "", false }, io.Discard, NewConfig())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse(%v) = %v, want an error containing %q", tt.args, err, tt.want)
			}
		})
	}
}

func TestParseMapperFilters(t *testing.T) {
	tests := []struct {
		name    string
		in      []string
		want    map[string]string
		wantErr bool
	}{
		{"repeated flags", []string{"user-gids=(a=1)", "user-groups=(&(b=2)(c=3))"}, map[string]string{"user-gids": "(a=1)", "user-groups": "(&(b=2)(c=3))"}, false},
		{"commas inside a DN", []string{"user-groups=(memberOf=cn=x,ou=y,dc=z)"}, map[string]string{"user-groups": "(memberOf=cn=x,ou=y,dc=z)"}, false},
		{"legacy joined", []string{"user-gids=(a=1),user-home=(h=2)"}, map[string]string{"user-gids": "(a=1)", "user-home": "(h=2)"}, false},
		{"unknown mapper", []string{"user-shell=(a=1)"}, nil, true},
		{"twice", []string{"user-gids=(a=1)", "user-gids=(a=2)"}, nil, true},
		{"no filter", []string{"user-gids"}, nil, true},
		{"empty", nil, map[string]string{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseMapperFilters(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseMapperFilters(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if !tt.wantErr {
				if d := cmp.Diff(tt.want, got); d != "" {
					t.Errorf("ParseMapperFilters(%q) (-want +got):\n%s", tt.in, d)
				}
			}
		})
	}
}

func TestGuard(t *testing.T) {
	g := Guard{MaxDropFraction: 0.1, MaxBytes: 100}
	tests := []struct {
		name             string
		guard            Guard
		current, desired int
		want             string
	}{
		{"growth", g, 10, 20, ""},
		{"first sync", g, 0, 5, ""},
		{"small drop", g, 100, 90, ""},
		{"large drop", g, 100, 89, RefusedDrop},
		{"empty", g, 100, 0, RefusedEmpty},
		{"empty first sync", g, 0, 0, RefusedEmpty},
		{"empty allowed", Guard{MaxDropFraction: 0.1, AllowEmpty: true}, 100, 0, ""},
		{"large drop allowed", Guard{MaxDropFraction: 0.1, AllowLargeDrop: true}, 100, 1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.guard.CheckCount("x", tt.current, tt.desired)
			var re *RefusedError
			got := ""
			if errors.As(err, &re) {
				got = re.Reason
			}
			if got != tt.want || (err != nil) != (tt.want != "") || (err != nil && !errors.Is(err, ErrRefused)) {
				t.Errorf("CheckCount(%d, %d) = %v, want reason %q", tt.current, tt.desired, err, tt.want)
			}
		})
	}
	if err := g.CheckSize("x", 101, 200); !errors.Is(err, ErrRefused) {
		t.Errorf("CheckSize(101, 200) = %v, want refused", err)
	}
	if err := g.CheckSize("x", 100, 200); err != nil {
		t.Errorf("CheckSize(100, 200) = %v, want nil", err)
	}
	if err := g.CheckSize("x", 100, MaxStoredBytes+1); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "stored object") {
		t.Errorf("CheckSize(100, MaxStoredBytes+1) = %v, want refused for the stored size", err)
	}
}

func TestPlanAnnotations(t *testing.T) {
	ids := map[string]ldapdir.Identity{
		"user-a": {User: "a", UID: "1", GID: "1", GIDs: []string{"1"}, Groups: []string{}},
		"user-b": {User: "b", UID: "2", GID: "2", GIDs: []string{"2"}, Groups: []string{}},
	}
	current := map[string]map[string]string{
		"user-a":  desiredAnnotations(ids["user-a"]),                 // up to date, no owner annotation
		"user-b":  {"kubehpc.io/uid": "3", "kubehpc.io/user": "B"},   // stale; the owner is not ours
		"user-c":  {"kubehpc.io/user": "c", "kubehpc.io/uid": "9"},   // left LDAP
		"user-d":  nil,                                               // never annotated, not in LDAP
		"user-e":  {"kubehpc.io/user": "e"},                          // only an owner: nothing of ours to remove
		"user-j":  {"kubehpc.io/user": "j.s", "kubehpc.io/uid": "7"}, // collision: left as it is
		"other-a": {"kubehpc.io/uid": "1"},                           // not under the prefix
	}
	got := PlanAnnotations("user-", current, ids, map[string][]string{"user-j": {"j-s", "j.s"}})
	want := []AnnotationChange{
		{Namespace: "user-b", Set: map[string]string{"kubehpc.io/uid": "2", "kubehpc.io/gid": "2", "kubehpc.io/gids": ",2,", "kubehpc.io/groups": ",,", "kubehpc.io/home": ""}, User: "b"},
		{Namespace: "user-c", Remove: true, User: "c"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("PlanAnnotations() (-want +got):\n%s", d)
	}
}

// TestJSONList proves the fast rendering equals json.Marshal's.
func TestJSONList(t *testing.T) {
	for _, v := range [][]string{nil, {}, {"10001"}, {"10001", "20001"}, {"a-b.c_d"}, {`q"uote`}, {`back\slash`}, {"<tag>&"}, {"jürgen"}, {"tab\t"}} {
		want := []byte("[]")
		if v != nil {
			want, _ = json.Marshal(v)
		}
		if got := jsonList(v); got != string(want) {
			t.Errorf("jsonList(%q) = %s, want %s", v, got, want)
		}
	}
}

// TestFullReadFallbackAnnouncedOnce: a server without change tracking is
// announced once in the log, and by incremental_sync 0 at every pass.
func TestFullReadFallbackAnnouncedOnce(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	p := &Pass{cfg: NewConfig(), log: zap.New(core), m: newMetrics(prometheus.NewRegistry())}
	p.reportRead(ldapdir.ReadStats{Full: true, Reason: ldapdir.FullFirst, Mode: ldapdir.TrackCSN})
	if got := testutil.ToFloat64(p.m.incremental); got != 1 {
		t.Errorf("incremental_sync with entryCSN = %v, want 1", got)
	}
	for range 3 {
		p.reportRead(ldapdir.ReadStats{Full: true, Reason: ldapdir.FullNoMarkers, Mode: ldapdir.TrackNone})
	}
	if got := testutil.ToFloat64(p.m.incremental); got != 0 {
		t.Errorf("incremental_sync without change tracking = %v, want 0", got)
	}
	if got := logs.FilterMessageSnippet("Fell back to full LDAP reads").Len(); got != 1 {
		t.Errorf("fallback log lines = %d, want 1", got)
	}
	if got := testutil.ToFloat64(p.m.reads.WithLabelValues("full")); got != 4 {
		t.Errorf("ldap_reads_total{kind=full} = %v, want 4", got)
	}
}

// TestRenderChanges proves rendering only what changed gives Render's data
// and DiffData's diff, for every mapper.
func TestRenderChanges(t *testing.T) {
	id := func(user, uid, home string, gids ...string) ldapdir.Identity {
		return ldapdir.Identity{User: user, UID: uid, GID: uid, Home: home, GIDs: gids, Groups: gids}
	}
	old := map[string]ldapdir.Identity{
		"user-a": id("a", "1", "/h/a", "1", "10"), "user-b": id("b", "2", "/h/b", "2"), "user-c": id("c", "3", "", "3"),
		"user-d": id("d", "4", "/h/d", "4"),
	}
	cur := map[string]ldapdir.Identity{
		"user-a": id("a", "1", "/h/a", "1", "10", "11"), // groups changed
		"user-b": id("b", "2", "/h/b", "2"),             // unchanged
		"user-c": id("c", "3", "/h/c", "3"),             // home added
		"user-e": id("e", "5", "", "5"),                 // new, no home
		// user-d deleted
	}
	for _, m := range Mappers {
		oldData := Render(m, old)
		data, d := RenderChanges(m, oldData, cur, ChangedKeys(old, cur))
		want := Render(m, cur)
		if diff := cmp.Diff(want, data); diff != "" {
			t.Errorf("RenderChanges(%s) data (-Render +got):\n%s", m, diff)
		}
		if diff := cmp.Diff(DiffData(oldData, want), d); diff != "" {
			t.Errorf("RenderChanges(%s) diff (-DiffData +got):\n%s", m, diff)
		}
	}
}
