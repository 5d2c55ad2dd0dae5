package bootstrap

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"k8s.io/utils/clock"

	"github.com/kubehpc/kubehpc/pkg/app"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	deftemplate "github.com/kubehpc/kubehpc/namespace-bootstrap/template"
)

func obj(m map[string]any) *unstructured.Unstructured { return &unstructured.Unstructured{Object: m} }

func TestNeedsApply(t *testing.T) {
	desired := func() *unstructured.Unstructured {
		return obj(map[string]any{
			"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
			"metadata": map[string]any{"name": "np", "annotations": map[string]any{HashAnnotation: "h1"}},
			"spec": map[string]any{"podSelector": map[string]any{}, "ingress": []any{
				map[string]any{"ports": []any{map[string]any{"port": float64(80)}}},
			}},
		})
	}
	live := func(mut func(m map[string]any)) *unstructured.Unstructured {
		m := desired().DeepCopy().Object
		m["metadata"].(map[string]any)["resourceVersion"] = "7"
		m["spec"].(map[string]any)["ingress"].([]any)[0].(map[string]any)["ports"].([]any)[0].(map[string]any)["port"] = int64(80)
		m["spec"].(map[string]any)["ingress"].([]any)[0].(map[string]any)["ports"].([]any)[0].(map[string]any)["protocol"] = "TCP"
		if mut != nil {
			mut(m)
		}
		return obj(m)
	}
	tests := []struct {
		name   string
		live   *unstructured.Unstructured
		want   bool
		reason string
	}{
		{name: "missing", live: nil, want: true, reason: "missing"},
		{name: "up to date, with server defaults and int64 numbers", live: live(nil)},
		{name: "empty map omitted by the server", live: live(func(m map[string]any) { delete(m["spec"].(map[string]any), "podSelector") })},
		{name: "other template", live: live(func(m map[string]any) {
			m["metadata"].(map[string]any)["annotations"] = map[string]any{HashAnnotation: "old"}
		}), want: true, reason: "template changed"},
		{name: "changed value", live: live(func(m map[string]any) {
			m["spec"].(map[string]any)["ingress"].([]any)[0].(map[string]any)["ports"].([]any)[0].(map[string]any)["port"] = int64(81)
		}), want: true, reason: "drifted at .spec.ingress[0].ports[0].port"},
		{name: "list grew", live: live(func(m map[string]any) {
			m["spec"].(map[string]any)["ingress"] = append(m["spec"].(map[string]any)["ingress"].([]any), map[string]any{})
		}), want: true, reason: "drifted at .spec.ingress"},
		{name: "someone else's label", live: live(func(m map[string]any) {
			m["metadata"].(map[string]any)["labels"] = map[string]any{"x": "y"}
		})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, reason := NeedsApply(desired(), tt.live)
			if got != tt.want || reason != tt.reason {
				t.Errorf("NeedsApply() = %v, %q; want %v, %q", got, reason, tt.want, tt.reason)
			}
		})
	}
}

// TestDefaultTemplate renders the shipped template with every option off
// and on and checks which objects come out.
func TestDefaultTemplate(t *testing.T) {
	tmpl, err := LoadTemplate(deftemplate.FS)
	if err != nil {
		t.Fatal(err)
	}
	base := Data{User: "John.Smith", Name: "john-smith", Namespace: "user-john-smith", Subject: "oidc:John.Smith",
		NamespaceLabels: map[string]string{"app.kubernetes.io/name": "open-ondemand"},
		Roles:           Roles{User: "ood-user", Initializer: "ood-initializer"},
		NetworkPolicy:   NetworkPolicy{AllowCIDRs: []string{"10.0.0.1/32"}}}
	full := base
	full.JobPodReaper = JobPodReaper{Enabled: true, ServiceAccount: "r", Namespace: "rn", ClusterRole: "rc"}
	full.NetworkPolicy.EgressDeny = true
	full.NetworkPolicy.EgressAllowPorts = []Port{{53, "UDP"}}
	full.PodSecurity.Enforce = "restricted"
	full.ResourceQuota = map[string]string{"pods": "10"}
	full.LimitRange.DefaultRequest = map[string]string{"cpu": "1"}
	full.ImagePullSecret = ImagePullSecret{Name: "reg", DockerConfigJSON: "e30="}
	onlyLimits := base
	onlyLimits.LimitRange.Default = map[string]string{"cpu": "1"}
	tests := []struct {
		name string
		data Data
		want string
	}{
		{name: "defaults", data: base, want: "Namespace user-john-smith,RoleBinding john-smith-ood-user,RoleBinding john-smith-ood-initializer,NetworkPolicy deny-from-other-namespaces"},
		{name: "everything", data: full, want: "Namespace user-john-smith,RoleBinding john-smith-ood-user,RoleBinding john-smith-ood-initializer," +
			"RoleBinding john-smith-job-pod-reaper-rolebinding,NetworkPolicy deny-from-other-namespaces,NetworkPolicy default-deny-egress," +
			"ResourceQuota user-quota,LimitRange user-limits,Secret reg,ServiceAccount default"},
		{name: "limit range without quota", data: onlyLimits, want: "Namespace user-john-smith,RoleBinding john-smith-ood-user,RoleBinding john-smith-ood-initializer," +
			"NetworkPolicy deny-from-other-namespaces,LimitRange user-limits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := tmpl.Render(&tt.data)
			if err != nil {
				t.Fatalf("Render() = %v", err)
			}
			var got []string
			for _, o := range objs {
				got = append(got, Describe(o))
			}
			if strings.Join(got, ",") != tt.want {
				t.Errorf("Render() = %s\nwant %s", strings.Join(got, ","), tt.want)
			}
			subj, _, _ := unstructured.NestedSlice(objs[1].Object, "subjects")
			if name := subj[0].(map[string]any)["name"]; name != "oidc:John.Smith" {
				t.Errorf("user subject = %v, want oidc:John.Smith", name)
			}
		})
	}
}

func TestLoadTemplateErrors(t *testing.T) {
	tests := []struct {
		name, file, want string
	}{
		{name: "unknown field", file: "kind: {{ .Nope }}", want: "can't evaluate field Nope"},
		{name: "syntax", file: "{{ if }}", want: "parse template"},
		{name: "no name", file: "apiVersion: v1\nkind: ConfigMap\n", want: "metadata.name are required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmpl, err := LoadTemplate(oneFile(tt.file))
			if err == nil {
				_, err = tmpl.Render(&Data{})
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

// TestRenderRefusesClusterScopedObjects proves a template cannot make the
// tool write anything cluster-wide or in another namespace.
func TestRenderRefusesClusterScopedObjects(t *testing.T) {
	tests := []struct{ name, file, want string }{
		{name: "ClusterRoleBinding", file: "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: x}\n", want: "unknown kind"},
		{name: "other namespace", file: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: kube-system}\n", want: "not the user's"},
		{name: "other Namespace", file: "apiVersion: v1\nkind: Namespace\nmetadata: {name: kube-system}\n", want: "may only hold the user's namespace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmpl, err := LoadTemplate(oneFile(tt.file))
			if err != nil {
				t.Fatal(err)
			}
			b := &Bootstrapper{Template: tmpl, Mapper: NewMapper(nil), NamespacePrefix: "user-"}
			if _, _, err := b.render("alice", "user-alice", nil); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("render() = %v, want error containing %q", err, tt.want)
			}
		})
	}
}

func TestUserLimiter(t *testing.T) {
	l := NewUserLimiter(6, 2) // one every 10 s, burst 2
	now := time.Unix(0, 0)
	steps := []struct {
		at   time.Duration
		user string
		want bool
	}{
		{0, "alice", true}, {0, "alice", true}, {0, "alice", false}, {0, "bob", true},
		{9 * time.Second, "alice", false}, {10 * time.Second, "alice", true}, {10 * time.Second, "alice", false},
	}
	for i, s := range steps {
		if got := l.Allow(s.user, now.Add(s.at)); got != s.want {
			t.Errorf("step %d: Allow(%s, +%v) = %v, want %v", i, s.user, s.at, got, s.want)
		}
	}
	if got := l.RetryAfter(); got != 10*time.Second {
		t.Errorf("RetryAfter() = %v, want 10s", got)
	}
}

func TestPortalUser(t *testing.T) {
	tests := []struct {
		prefix, kubeUser, want string
		wantErr                bool
	}{
		{"", "alice", "alice", false},
		{"oidc:", "oidc:John.Smith", "John.Smith", false},
		{"oidc:", "alice", "", true},
		{"", "system:serviceaccount:ns:sa", "", true},
		{"", "system:admin", "", true},
		{"oidc:", "oidc:", "", true},
		{"", "bad_name", "", true},
	}
	for _, tt := range tests {
		s := &Service{UsernamePrefix: tt.prefix}
		got, err := s.portalUser(tt.kubeUser)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("portalUser(%q) with prefix %q = %q, %v; want %q, err %v", tt.kubeUser, tt.prefix, got, err, tt.want, tt.wantErr)
		}
	}
}

// TestTemplateRefusedAtStart proves a site template naming a cluster-scoped
// kind (found through discovery) fails at start, not at a user's login.
func TestTemplateRefusedAtStart(t *testing.T) {
	dir := t.TempDir()
	crb := "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: '{{ .Name }}-admin'}\n" +
		"roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\n"
	if err := os.WriteFile(filepath.Join(dir, "evil.yaml"), []byte(crb), 0o600); err != nil {
		t.Fatal(err)
	}
	c := newConfig(t, "--template-dir", dir)
	_, err := c.NewBootstrapper(app.Env{Log: zap.NewNop(), Clock: clock.RealClock{}, Registry: prometheus.NewRegistry(), RESTConfig: env.Kube.Config})
	if !errors.Is(err, ErrInvalidTemplate) || !strings.Contains(err.Error(), "cluster-scoped") {
		t.Errorf("NewBootstrapper() with a ClusterRoleBinding template = %v, want a cluster-scoped template error", err)
	}
}
