package bootstrap

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
	"text/template"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// Data is what a template sees, per user. The fields are fixed so that a
// site's template fails at load time, not at a user's login, when it names
// one that does not exist.
type Data struct {
	// User is the portal username as given (e.g. "John.Smith").
	User string
	// Name is the username as it appears in the namespace name (lower case,
	// '.' and '@' replaced by '-'), for object names.
	Name string
	// Namespace is the user's namespace (prefix + Name).
	Namespace string
	// Subject is the Kubernetes user name of the person: the OIDC username
	// prefix + User, as the API server sees it.
	Subject string
	// UID, GID and Home are the user's LDAP identity; empty without an
	// identity source.
	UID, GID, Home string

	NamespaceLabels map[string]string
	Roles           Roles
	JobPodReaper    JobPodReaper
	NetworkPolicy   NetworkPolicy
	PodSecurity     PodSecurity
	ResourceQuota   map[string]string
	LimitRange      LimitRange
	ImagePullSecret ImagePullSecret
	// Values are the site's own --template-value key=value pairs.
	Values map[string]string
}

// Roles names the ClusterRoles the RoleBindings refer to.
type Roles struct{ User, Initializer string }

// JobPodReaper configures the reaper's RoleBinding (per-namespace mode).
type JobPodReaper struct {
	Enabled                                bool
	ServiceAccount, Namespace, ClusterRole string
}

// NetworkPolicy configures ingress and the optional egress policy.
type NetworkPolicy struct {
	AllowCIDRs       []string
	EgressDeny       bool
	EgressAllowCIDRs []string
	EgressAllowPorts []Port
}

// Port is an allowed egress port.
type Port struct {
	Port     int
	Protocol string
}

// PodSecurity is the Pod Security Admission level to enforce ("" for none).
type PodSecurity struct{ Enforce string }

// LimitRange holds container defaults.
type LimitRange struct{ Default, DefaultRequest map[string]string }

// ImagePullSecret is the optional registry credential; DockerConfigJSON is
// base64 encoded.
type ImagePullSecret struct{ Name, DockerConfigJSON string }

// Template is a parsed template directory.
type Template struct {
	files []*template.Template
}

// LoadTemplate parses every *.yaml and *.yml file of fsys in name order.
func LoadTemplate(fsys fs.FS) (*Template, error) {
	var names []string
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("read template directory: %w", err)
	}
	for _, e := range entries {
		if ext := path.Ext(e.Name()); !e.IsDir() && (ext == ".yaml" || ext == ".yml") {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		return nil, errors.New("template directory has no *.yaml files")
	}
	sort.Strings(names)
	t := &Template{}
	for _, name := range names {
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("read template %s: %w", name, err)
		}
		tt, err := template.New(name).Option("missingkey=error").Funcs(funcs).Parse(string(b))
		if err != nil {
			return nil, fmt.Errorf("parse template %s: %w", name, err)
		}
		t.files = append(t.files, tt)
	}
	return t, nil
}

var funcs = template.FuncMap{
	// quote renders a string as a JSON string, which is valid YAML whatever
	// it holds.
	"quote": func(s string) string {
		b, _ := json.Marshal(s)
		return string(b)
	},
}

// Render executes every file for d and decodes the YAML documents into
// objects, skipping empty ones (a disabled optional object).
func (t *Template) Render(d *Data) ([]*unstructured.Unstructured, error) {
	var objs []*unstructured.Unstructured
	for _, tt := range t.files {
		var buf bytes.Buffer
		if err := tt.Execute(&buf, d); err != nil {
			return nil, fmt.Errorf("render template %s: %w", tt.Name(), err)
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(&buf, 4096)
		for i := 0; ; i++ {
			var m map[string]any
			if err := dec.Decode(&m); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				return nil, fmt.Errorf("decode template %s document %d: %w", tt.Name(), i, err)
			}
			if len(m) == 0 {
				continue
			}
			u := &unstructured.Unstructured{Object: m}
			if u.GetAPIVersion() == "" || u.GetKind() == "" || u.GetName() == "" {
				return nil, fmt.Errorf("template %s document %d: apiVersion, kind and metadata.name are required", tt.Name(), i)
			}
			objs = append(objs, u)
		}
	}
	return objs, nil
}

// Describe names an object for logs and errors: "RoleBinding alice-ood-user".
func Describe(u *unstructured.Unstructured) string {
	return strings.TrimSpace(u.GetKind() + " " + u.GetName())
}
