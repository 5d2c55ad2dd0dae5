package bootstrap

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/clock"

	deftemplate "github.com/kubehpc/kubehpc/namespace-bootstrap/template"
	"github.com/kubehpc/kubehpc/pkg/app"
)

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

// oneFile returns a template directory holding one file.
func oneFile(content string) fs.FS {
	return fstest.MapFS{"a.yaml": &fstest.MapFile{Data: []byte(content)}}
}
