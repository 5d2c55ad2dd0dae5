package mapsync

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"

	"github.com/kubehpc/kubehpc/pkg/kubeclient"
	"github.com/kubehpc/kubehpc/pkg/ldapdir"
	"github.com/kubehpc/kubehpc/pkg/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	// The tests bind as a reader held to a size limit of 3 (the seed has 5
	// users), never as the root DN, which slapd exempts: paging is forced.
	os.Exit(testenv.Main(m, testenv.Options{Kube: true, LDAP: true, SlapdOptions: testenv.SlapdOptions{Reader: true, SizeLimit: 3}}, &env))
}

const suffix = "dc=example,dc=org"

// testConfig is the seed directory read with the RFC2307 memberUid scheme,
// every mapper on, into a fresh namespace.
func testConfig(t *testing.T, s *testenv.Slapd) *Config {
	t.Helper()
	c := NewConfig()
	c.URL = s.URL
	c.BindDN, c.BindPassword = s.ReaderDN, s.ReaderPassword
	c.PageSize = 2
	c.UserBaseDN, c.GroupBaseDN = "ou=people,"+s.Suffix, "ou=groups,"+s.Suffix
	c.Scheme = ldapdir.SchemeMemberUID
	c.Mappers = append([]string(nil), Mappers...)
	c.Namespace = env.Namespace(t, "lcm-", nil)
	c.Out = &bytes.Buffer{}
	return c
}

type harness struct {
	pass    *Pass
	counter *kubeclient.RequestCounter
	rec     *record.FakeRecorder
	reg     *prometheus.Registry
	client  kubernetes.Interface
}

func newHarness(t *testing.T, c *Config) *harness {
	t.Helper()
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
	a := env.App(t, testenv.AppOptions{Log: zaptest.NewLogger(t)})
	h := &harness{counter: a.Counter, rec: record.NewFakeRecorder(10000), reg: a.Registry, client: a.Client}
	var err error
	h.pass, err = New(c, Deps{Client: a.Client, Log: a.Log, Registry: a.Registry, Recorder: h.rec})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *harness) run(t *testing.T) error {
	t.Helper()
	h.counter.Reset()
	return h.pass.RunOnce(context.Background())
}

func (h *harness) mustRun(t *testing.T) {
	t.Helper()
	if err := h.run(t); err != nil {
		t.Fatalf("RunOnce() = %v", err)
	}
}

// maps reads every ConfigMap of the namespace managed by the tool.
func readMaps(t *testing.T, ns string) map[string]map[string]string {
	t.Helper()
	out := map[string]map[string]string{}
	for _, m := range Mappers {
		cm, err := env.Kube.Client.CoreV1().ConfigMaps(ns).Get(context.Background(), ConfigMapName(m), metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if cm.Labels["app.kubernetes.io/managed-by"] != Tool.Name {
			t.Errorf("ConfigMap %s labels = %v, want managed-by %s", cm.Name, cm.Labels, Tool.Name)
		}
		out[ConfigMapName(m)] = cm.Data
	}
	return out
}

func jsonOf(v ...string) string {
	if v == nil {
		v = []string{}
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// seedMemberUID is the seed directory under the memberUid scheme.
func seedMemberUID() map[string]map[string]string {
	return map[string]map[string]string{
		"user-uid-map": {"user-alice": "10001", "user-bob": "10002", "user-john-smith": "10003", "user-carol": "10004", "user-dave": "10005"},
		"user-gid-map": {"user-alice": "10001", "user-bob": "10002", "user-john-smith": "10003", "user-carol": "10004", "user-dave": "10005"},
		"user-gids-map": {
			"user-alice":      jsonOf("10001", "20001", "20100"),
			"user-bob":        jsonOf("10002", "20001", "20100"),
			"user-john-smith": jsonOf("10003", "20002", "20100"),
			"user-carol":      jsonOf("10004", "20001", "20002", "20003", "20004", "20005", "20006", "20007", "20008", "20100"),
			"user-dave":       jsonOf("10005", "20100"),
		},
		"user-groups-map": {
			"user-alice":      jsonOf("alice", "hpcusers", "pzs0001"),
			"user-bob":        jsonOf("bob", "hpcusers", "pzs0001"),
			"user-john-smith": jsonOf("hpcusers", "john.smith", "pzs0002"),
			"user-carol":      jsonOf("carol", "hpcusers", "pzs0001", "pzs0002", "pzs0003", "pzs0004", "pzs0005", "pzs0006", "pzs0007", "pzs0008"),
			"user-dave":       jsonOf("dave", "hpcusers"),
		},
		"user-home-map": {"user-alice": "/home/alice", "user-bob": "/home/bob", "user-john-smith": "/home/john.smith", "user-carol": "/home/carol", "user-dave": "/home/dave"},
	}
}

func withAllGroups(m map[string]map[string]string) map[string]map[string]string {
	m["user-all-groups-map"] = m["user-groups-map"]
	return m
}

func diffMaps(t *testing.T, got, want map[string]map[string]string) {
	t.Helper()
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("ConfigMaps differ (-want +got):\n%s", d)
	}
}
