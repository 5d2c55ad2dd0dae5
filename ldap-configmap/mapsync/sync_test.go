package mapsync

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap/zaptest"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"

	"github.com/kubehpc/kubehpc/pkg/app"
	"github.com/kubehpc/kubehpc/pkg/ldapdir"
	"github.com/kubehpc/kubehpc/pkg/testenv"
)

// TestMappersAndSchemes proves every mapper under every member scheme
// against the real slapd: memberUid groups, groupOfNames member DNs with the
// proj-a/proj-b nesting cycle, and memberOf on users.
func TestMappersAndSchemes(t *testing.T) {
	uids := map[string]string{"user-alice": "10001", "user-bob": "10002", "user-john-smith": "10003", "user-carol": "10004", "user-dave": "10005"}
	homes := map[string]string{"user-alice": "/home/alice", "user-bob": "/home/bob", "user-john-smith": "/home/john.smith", "user-carol": "/home/carol", "user-dave": "/home/dave"}
	projects := func(gids, groups map[string]string) map[string]map[string]string {
		return map[string]map[string]string{"user-uid-map": uids, "user-gid-map": uids, "user-gids-map": gids,
			"user-groups-map": groups, "user-all-groups-map": groups, "user-home-map": homes}
	}
	tests := []struct {
		name   string
		scheme string
		nested bool
		want   map[string]map[string]string
	}{
		{name: "memberuid", scheme: ldapdir.SchemeMemberUID, want: withAllGroups(seedMemberUID())},
		{name: "member nested with a cycle", scheme: ldapdir.SchemeMember, nested: true, want: projects(
			map[string]string{"user-alice": jsonOf("10001", "30001", "30002"), "user-carol": jsonOf("10004", "30001", "30002"),
				"user-john-smith": jsonOf("10003", "30003"), "user-bob": jsonOf("10002"), "user-dave": jsonOf("10005")},
			map[string]string{"user-alice": jsonOf("proj-a", "proj-b"), "user-carol": jsonOf("proj-a", "proj-b"),
				"user-john-smith": jsonOf("proj-c"), "user-bob": jsonOf(), "user-dave": jsonOf()})},
		{name: "member flat", scheme: ldapdir.SchemeMember, want: projects(
			map[string]string{"user-alice": jsonOf("10001", "30001"), "user-carol": jsonOf("10004", "30002"),
				"user-john-smith": jsonOf("10003", "30003"), "user-bob": jsonOf("10002"), "user-dave": jsonOf("10005")},
			map[string]string{"user-alice": jsonOf("proj-a"), "user-carol": jsonOf("proj-b"),
				"user-john-smith": jsonOf("proj-c"), "user-bob": jsonOf(), "user-dave": jsonOf()})},
		{name: "memberof", scheme: ldapdir.SchemeMemberOf, nested: true, want: projects(
			map[string]string{"user-alice": jsonOf("10001", "30001"), "user-carol": jsonOf("10004", "30002"),
				"user-john-smith": jsonOf("10003", "30003"), "user-bob": jsonOf("10002"), "user-dave": jsonOf("10005")},
			map[string]string{"user-alice": jsonOf("proj-a"), "user-carol": jsonOf("proj-b"),
				"user-john-smith": jsonOf("proj-c"), "user-bob": jsonOf(), "user-dave": jsonOf()})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testConfig(t, env.LDAP)
			c.Scheme, c.Nested = tt.scheme, tt.nested
			if tt.scheme != ldapdir.SchemeMemberUID {
				c.GroupBaseDN = "ou=projects," + suffix
				c.GroupFilter = "(objectClass=groupOfNames)"
			}
			h := newHarness(t, c)
			h.mustRun(t)
			diffMaps(t, readMaps(t, c.Namespace), tt.want)
			if got := h.counter.Total("PATCH"); got != 2*len(Mappers) {
				t.Errorf("first pass PATCH requests = %d (%s), want %d (per mapper: an apply creating it empty, a merge patch of its data)", got, h.counter, 2*len(Mappers))
			}
		})
	}
}

// TestPerMapperFilters proves a mapper's own group filter, with commas and
// parentheses in it, changes only that mapper: only pzs groups as accounts,
// every group as supplemental GIDs.
func TestPerMapperFilters(t *testing.T) {
	c := testConfig(t, env.LDAP)
	c.Mappers = []string{MapperGIDs, MapperGroups, MapperAllGroups}
	if err := c.setFilterFlags([]string{"user-groups=(&(objectClass=posixGroup)(|(cn=pzs0001)(cn=pzs0002)))"}, nil); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, c)
	h.mustRun(t)
	got := readMaps(t, c.Namespace)
	want := seedMemberUID()
	if got["user-groups-map"]["user-carol"] != jsonOf("pzs0001", "pzs0002") {
		t.Errorf("user-groups-map[user-carol] = %s, want [pzs0001 pzs0002]", got["user-groups-map"]["user-carol"])
	}
	if got["user-groups-map"]["user-dave"] != jsonOf() {
		t.Errorf("user-groups-map[user-dave] = %s, want []", got["user-groups-map"]["user-dave"])
	}
	if got["user-all-groups-map"]["user-carol"] != want["user-groups-map"]["user-carol"] {
		t.Errorf("user-all-groups-map[user-carol] = %s, want every group", got["user-all-groups-map"]["user-carol"])
	}
	if got["user-gids-map"]["user-carol"] != want["user-gids-map"]["user-carol"] {
		t.Errorf("user-gids-map[user-carol] = %s, want every GID", got["user-gids-map"]["user-carol"])
	}
	// Two group filters: one search each, plus one user search (pages of 2:
	// 3 pages of users, 7 pages of 14 groups, 1 of the 2 filtered groups),
	// plus 2 for the change marker.
	if got := h.pass.LastLDAPRequests.Load(); got != 13 {
		t.Errorf("LDAP requests = %d, want 13 (marker 2, users 3, all groups 7, filtered groups 1)", got)
	}
}

func (c *Config) setFilterFlags(groups, users []string) error {
	c.MapperGroupFilters, c.MapperUserFilters = groups, users
	return c.Validate()
}

// TestTLS proves StartTLS and ldaps with a private CA (file and contents),
// and that a wrong CA fails the pass without writing.
func TestTLS(t *testing.T) {
	pem := mustRead(t, env.LDAP.CAFile)
	other, err := testenv.NewCA("other")
	if err != nil {
		t.Fatal(err)
	}
	otherFile, _, _, err := other.WriteFiles(t.TempDir(), "other")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		url      string
		startTLS bool
		caFile   string
		caPEM    string
		wantErr  bool
	}{
		{name: "StartTLS CA file", url: env.LDAP.URL, startTLS: true, caFile: env.LDAP.CAFile},
		{name: "StartTLS CA contents", url: env.LDAP.URL, startTLS: true, caPEM: pem},
		{name: "ldaps CA file", url: env.LDAP.LDAPSURL, caFile: env.LDAP.CAFile},
		{name: "ldaps CA contents", url: env.LDAP.LDAPSURL, caPEM: pem},
		{name: "ldaps wrong CA", url: env.LDAP.LDAPSURL, caFile: otherFile, wantErr: true},
		{name: "StartTLS wrong CA", url: env.LDAP.URL, startTLS: true, caFile: otherFile, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testConfig(t, env.LDAP)
			c.Mappers = []string{MapperUID}
			c.URL, c.StartTLS, c.CAFile, c.CACert = tt.url, tt.startTLS, tt.caFile, tt.caPEM
			h := newHarness(t, c)
			err := h.run(t)
			if tt.wantErr {
				if err == nil {
					t.Fatal("RunOnce() with the wrong CA = nil, want a certificate error")
				}
				if h.counter.Writes() != 0 {
					t.Errorf("writes after a TLS failure = %s, want none", h.counter)
				}
				if got := testutil.ToFloat64(h.pass.m.ldapErrors.WithLabelValues("connect")); got != 1 {
					t.Errorf("ldap_errors_total{operation=connect} = %v, want 1", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("RunOnce() = %v", err)
			}
			if got := readMaps(t, c.Namespace)["user-uid-map"]["user-john-smith"]; got != "10003" {
				t.Errorf("user-uid-map[user-john-smith] = %q, want 10003", got)
			}
		})
	}
}

// TestPagingManyPages proves paged search across many pages on a server whose
// size limit (like AD's) fails an unpaged search, which leaves maps intact.
func TestPagingManyPages(t *testing.T) {
	const sfx = "dc=paging,dc=org"
	s, err := testenv.StartSlapd(context.Background(), testenv.SlapdOptions{Suffix: sfx, SizeLimit: 500,
		LDIF: testenv.GenerateDirectory(sfx, 1300, 40, 4)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	c := testConfig(t, s)
	c.Mappers = []string{MapperUID, MapperGIDs}
	c.PageSize = 100
	c.BindDN, c.BindPassword = "", "" // anonymous: the root DN is exempt from size limits
	h := newHarness(t, c)
	h.mustRun(t)
	maps := readMaps(t, c.Namespace)
	if n := len(maps["user-uid-map"]); n != 1300 {
		t.Errorf("user-uid-map has %d keys, want 1300", n)
	}
	if got := maps["user-gids-map"]["user-user01299"]; !strings.HasPrefix(got, `["101299",`) || strings.Count(got, ",") != 4 {
		t.Errorf("user-gids-map[user-user01299] = %s, want the primary GID and 4 project GIDs", got)
	}
	// The change marker (root DSE, the naming context), 13 pages of users
	// plus 1 of groups.
	if got := h.pass.LastLDAPRequests.Load(); got != 16 {
		t.Errorf("LDAP requests = %d, want 16 (2 for the change marker, 13 user pages, 1 group page)", got)
	}

	// Without paging the server's size limit fails the search: nothing written.
	c2 := *c
	c2.Paged = false
	h2 := newHarness(t, &c2)
	err = h2.run(t)
	if err == nil || !strings.Contains(err.Error(), "Size Limit Exceeded") {
		t.Fatalf("unpaged RunOnce() = %v, want Size Limit Exceeded", err)
	}
	if h2.counter.Writes() != 0 {
		t.Errorf("writes after a failed search = %s, want none", h2.counter)
	}
	if n := len(readMaps(t, c.Namespace)["user-uid-map"]); n != 1300 {
		t.Errorf("after a failed search user-uid-map has %d keys, want 1300 (intact)", n)
	}
}

// TestOutageAndEmptyLeaveMapsIntact proves LDAP down, a bind failure and an
// empty result write nothing and are counted, and that --allow-empty is the
// explicit override.
func TestOutageAndEmptyLeaveMapsIntact(t *testing.T) {
	c := testConfig(t, env.LDAP)
	newHarness(t, c).mustRun(t)
	want := readMaps(t, c.Namespace)

	tests := []struct {
		name    string
		mutate  func(*Config)
		metric  func(*metrics) float64
		wantErr error
		wantMsg string
	}{
		{name: "LDAP down", mutate: func(c *Config) { c.URL = "ldap://127.0.0.1:1" },
			metric: func(m *metrics) float64 { return testutil.ToFloat64(m.ldapErrors.WithLabelValues("connect")) }},
		{name: "bind failure", mutate: func(c *Config) { c.BindPassword = "wrong" },
			metric: func(m *metrics) float64 { return testutil.ToFloat64(m.ldapErrors.WithLabelValues("bind")) }},
		{name: "bad base DN", mutate: func(c *Config) { c.UserBaseDN = "ou=nowhere," + suffix },
			metric: func(m *metrics) float64 { return testutil.ToFloat64(m.ldapErrors.WithLabelValues("search")) }},
		{name: "empty result", mutate: func(c *Config) { c.UserFilter = "(uid=nobody-at-all)" }, wantErr: ErrRefused,
			wantMsg: "LDAP gave no users (currently 5)",
			metric:  func(m *metrics) float64 { return testutil.ToFloat64(m.refused.WithLabelValues(RefusedEmpty)) }},
		{name: "large drop", mutate: func(c *Config) { c.UserFilter = "(|(uid=alice)(uid=bob))" }, wantErr: ErrRefused,
			metric: func(m *metrics) float64 {
				return testutil.ToFloat64(m.refused.WithLabelValues(RefusedDrop)) / float64(len(Mappers))
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c2 := *c
			tt.mutate(&c2)
			h := newHarness(t, &c2)
			err := h.run(t)
			if err == nil {
				t.Fatal("RunOnce() = nil, want an error")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("RunOnce() = %v, want %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("RunOnce() = %v, want it to say %q", err, tt.wantMsg)
			}
			if h.counter.Writes() != 0 {
				t.Errorf("writes = %s, want none", h.counter)
			}
			if got := tt.metric(h.pass.m); got != 1 {
				t.Errorf("metric = %v, want 1", got)
			}
			if got := testutil.ToFloat64(h.pass.m.lastError); got != 1 {
				t.Errorf("error gauge = %v, want 1", got)
			}
			diffMaps(t, readMaps(t, c.Namespace), want)
		})
	}

	t.Run("allow-empty overrides", func(t *testing.T) {
		c2 := *c
		c2.UserFilter, c2.AllowEmpty = "(uid=nobody-at-all)", true
		newHarness(t, &c2).mustRun(t)
		for name, data := range readMaps(t, c.Namespace) {
			if len(data) != 0 {
				t.Errorf("%s after an allowed empty sync has %d keys, want 0", name, len(data))
			}
		}
	})
}

// TestNoWritesWhenUnchanged proves a second pass with nothing changed makes
// no write at all (ConfigMaps and namespaces), only reads.
func TestNoWritesWhenUnchanged(t *testing.T) {
	c := testConfig(t, env.LDAP)
	c.UserPrefix = "nw-"
	c.NamespaceAnnotations = true
	userNamespaces(t, "nw-alice", "nw-carol")
	h := newHarness(t, c)
	h.mustRun(t)
	// Each map: an apply creating it empty, a merge patch of its data.
	if got := h.counter.Total("PATCH"); got != 2*len(Mappers)+2 {
		t.Errorf("first pass PATCH = %d (%s), want %d", got, h.counter, 2*len(Mappers)+2)
	}
	for range 2 {
		h.mustRun(t)
		if h.counter.Writes() != 0 {
			t.Errorf("pass with nothing changed: writes = %s, want none", h.counter)
		}
		if got := h.counter.Total("GET"); got != len(Mappers)+1 {
			t.Errorf("pass with nothing changed: GETs = %d (%s), want %d (a metadata GET per ConfigMap, one namespace list)", got, h.counter, len(Mappers)+1)
		}
	}
	// The stored maps carry no managedFields (see dataPatch).
	for name := range readMaps(t, c.Namespace) {
		cm, err := env.Kube.Client.CoreV1().ConfigMaps(c.Namespace).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(cm.ManagedFields) != 0 {
			t.Errorf("%s managedFields = %v, want none", name, cm.ManagedFields)
		}
	}
}

// TestDryRun proves --dry-run prints the diff and writes nothing.
func TestDryRun(t *testing.T) {
	c := testConfig(t, env.LDAP)
	c.Mappers = []string{MapperUID}
	c.DryRun = true
	c.NamespaceAnnotations, c.UserPrefix = true, "dr-"
	userNamespaces(t, "dr-alice")
	createNamespace(t, "dr-gone", map[string]string{"kubehpc.io/user": "gone", "kubehpc.io/uid": "10999"})
	h := newHarness(t, c)
	h.mustRun(t)
	if h.counter.Writes() != 0 {
		t.Errorf("dry-run writes = %s, want none", h.counter)
	}
	out := c.Out.(*bytes.Buffer).String()
	for _, want := range []string{"--- ConfigMap " + c.Namespace + "/user-uid-map: 5 added, 0 removed, 0 changed", `+ dr-alice: "10001"`, `+ dr-john-smith: "10003"`,
		`~ Namespace dr-alice: kubehpc.io/uid="10001" (was "")`, `- Namespace dr-gone: remove identity annotations (user "gone" not in LDAP)`} {
		if !strings.Contains(out, want) {
			t.Errorf("dry-run output lacks %q:\n%s", want, out)
		}
	}
	if _, err := env.Kube.Client.CoreV1().ConfigMaps(c.Namespace).Get(context.Background(), "user-uid-map", metav1.GetOptions{}); err == nil {
		t.Error("dry-run created user-uid-map")
	}
	if got := nsAnnotations(t, "dr-alice"); len(got) != 0 {
		t.Errorf("dry-run annotated dr-alice: %v", got)
	}
	if got := nsAnnotations(t, "dr-gone"); len(got) != 2 {
		t.Errorf("dry-run removed dr-gone's annotations: %v", got)
	}
}

// TestSizeGuard proves each map is guarded on its own before any write:
// the maps over the limit are refused (error, Warning Event, metrics) and
// the maps that fit are written, from the same LDAP read.
func TestSizeGuard(t *testing.T) {
	c := testConfig(t, env.LDAP)
	c.MaxConfigMapBytes = 200
	h := newHarness(t, c)
	err := h.run(t)
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "user-groups-map") || !strings.Contains(err.Error(), "user-gids-map") {
		t.Fatalf("RunOnce() = %v, want size refusals naming user-groups-map and user-gids-map", err)
	}
	got := readMaps(t, c.Namespace)
	want := seedMemberUID()
	for _, name := range []string{"user-uid-map", "user-gid-map", "user-home-map"} {
		if d := cmp.Diff(want[name], got[name]); d != "" {
			t.Errorf("%s (fits) (-want +got):\n%s", name, d)
		}
	}
	for _, name := range []string{"user-gids-map", "user-groups-map", "user-all-groups-map"} {
		if _, ok := got[name]; ok {
			t.Errorf("%s (over the limit) was written", name)
		}
		if got := testutil.ToFloat64(h.pass.m.size.WithLabelValues(name)); got <= 200 {
			t.Errorf("size_bytes{%s} = %v, want > 200", name, got)
		}
	}
	if got := testutil.ToFloat64(h.pass.m.refused.WithLabelValues(RefusedSize)); got != 3 {
		t.Errorf("refused_total{size} = %v, want 3", got)
	}
	var tooLarge int
	for len(h.rec.Events) > 0 {
		if e := <-h.rec.Events; strings.HasPrefix(e, "Warning TooLarge Not updated: refused to write ConfigMap user-") {
			tooLarge++
		}
	}
	if tooLarge != 3 {
		t.Errorf("TooLarge Warning Events = %d, want 3", tooLarge)
	}
}

// TestStoredSizeAtScale writes a map whose data (about 0.9 MiB in 32,000
// keys) fits the API server's 1 MiB limit but whose stored object would not
// fit etcd's request limit with server-side apply's managedFields listing
// every key (issue 16): the write path stores no managedFields, so it is
// written, and the stored size the guard measured matches the object read
// back.
func TestStoredSizeAtScale(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t, "big-", nil)
	c := NewConfig()
	c.Namespace = ns
	p := &Pass{cfg: c, client: env.Kube.Client, known: map[string]knownConfigMap{}, m: newMetrics(prometheus.NewRegistry()), log: zaptest.NewLogger(t), rec: record.NewFakeRecorder(100)}
	desired := map[string]string{}
	for i := range 32000 {
		desired[fmt.Sprintf("user-u%06d", i)] = fmt.Sprintf(`["%d","20001"]`, 100000+i)
	}
	plan := ConfigMapPlan{Mapper: "user-gids", Name: "user-gids-map", Desired: desired, Size: DataSize(desired), Write: true}
	plan.Stored = StoredSize(desiredConfigMap(ns, plan))
	if plan.Size > MaxConfigMapBytes || plan.Size < 800000 {
		t.Fatalf("test data is %d bytes, want 0.8-1 MiB", plan.Size)
	}
	if err := p.writeConfigMap(ctx, plan); err != nil {
		t.Fatalf("writeConfigMap(%d bytes of data) = %v", plan.Size, err)
	}
	cm, err := env.Kube.Client.CoreV1().ConfigMaps(ns).Get(ctx, "user-gids-map", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(cm.Data) != 32000 || len(cm.ManagedFields) != 0 {
		t.Errorf("stored map: %d keys, managedFields %d entries; want 32000 keys and none", len(cm.Data), len(cm.ManagedFields))
	}
	if got := cm.Size(); got > plan.Stored || plan.Stored-got > 512 {
		t.Errorf("stored object is %d bytes, the guard measured %d: want the measure at most 512 bytes above", got, plan.Stored)
	}
	// With server-side apply's managedFields the same object is over etcd's limit.
	withApply := cm.DeepCopy()
	withApply.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: Tool.Name, Operation: metav1.ManagedFieldsOperationApply,
		FieldsType: "FieldsV1", FieldsV1: metav1.NewFieldsV1(string(fieldsFor(desired)))}}
	if got := StoredSize(withApply); got <= MaxStoredBytes {
		t.Errorf("StoredSize with an apply's managedFields = %d, want over %d (the guard counts managedFields)", got, MaxStoredBytes)
	}
}

// fieldsFor is the managedFields FieldsV1 an apply of data records.
func fieldsFor(data map[string]string) []byte {
	f := map[string]any{}
	for k := range data {
		f["f:"+k] = map[string]any{}
	}
	b, _ := json.Marshal(map[string]any{"f:data": f})
	return b
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := readFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestTakesOverLegacyMaps proves the migration from the original tool: a
// ConfigMap written with Update by another field manager, holding a user no
// longer in LDAP, is taken over and that stale key is removed.
func TestTakesOverLegacyMaps(t *testing.T) {
	ctx := context.Background()
	c := testConfig(t, env.LDAP)
	c.Mappers = []string{MapperUID}
	legacy := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "user-uid-map", Namespace: c.Namespace},
		Data: map[string]string{"user-alice": "1", "user-zed": "9999"}}
	if _, err := env.Kube.Client.CoreV1().ConfigMaps(c.Namespace).Create(ctx, legacy, metav1.CreateOptions{FieldManager: "k8-ldap-configmap"}); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, c)
	h.mustRun(t)
	want := seedMemberUID()["user-uid-map"]
	if d := cmp.Diff(want, readMaps(t, c.Namespace)["user-uid-map"]); d != "" {
		t.Errorf("user-uid-map after take-over (-want +got):\n%s", d)
	}
	select {
	case e := <-h.rec.Events:
		if !strings.Contains(e, "Synced 5 users from LDAP: 4 added, 1 removed, 1 changed") {
			t.Errorf("event = %q, want the added/removed/changed summary", e)
		}
	default:
		t.Error("no Event recorded on the ConfigMap")
	}
	h.mustRun(t)
	if h.counter.Writes() != 0 {
		t.Errorf("second pass writes = %s, want none", h.counter)
	}
}

// TestRunOnceBinary runs the tool the way main does (app.Run with --once and
// a kubeconfig), configured only through the original tool's environment
// variables plus a bind password file.
func TestRunOnceBinary(t *testing.T) {
	ns := env.Namespace(t, "lcm-bin-", nil)
	pwFile := t.TempDir() + "/password"
	if err := os.WriteFile(pwFile, []byte(env.LDAP.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{
		"LDAP_URL": env.LDAP.URL, "LDAP_TLS": "true", "LDAP_CONFIGMAP_LDAP_TLS_CA_FILE": env.LDAP.CAFile,
		"LDAP_BIND_DN": env.LDAP.BindDN, "LDAP_CONFIGMAP_LDAP_BIND_PASSWORD_FILE": pwFile,
		"LDAP_USER_BASE_DN": "ou=people," + suffix, "LDAP_GROUP_BASE_DN": "ou=groups," + suffix,
		"LDAP_MEMBER_SCHEME": "memberuid", "MAPPERS": "user-uid,user-gids", "NAMESPACE": ns,
	}
	lookup := func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	var out bytes.Buffer
	args := []string{"--once", "--kubeconfig=" + env.Kube.KubeconfigPath, "--log-format=json"}
	if err := app.Run(context.Background(), tool, args, lookup, &out, NewConfig()); err != nil {
		t.Fatalf("app.Run() = %v\n%s", err, out.String())
	}
	maps := readMaps(t, ns)
	want := seedMemberUID()
	if d := cmp.Diff(want["user-gids-map"], maps["user-gids-map"]); d != "" {
		t.Errorf("user-gids-map (-want +got):\n%s", d)
	}
	if !strings.Contains(out.String(), `"msg":"Updated ConfigMap"`) {
		t.Errorf("log lacks the per-change line:\n%s", out.String())
	}
}
