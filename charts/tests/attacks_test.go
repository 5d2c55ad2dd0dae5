package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/yaml"

	"github.com/kubehpc/kubehpc/pkg/testenv"
)

// catalogueCase is one file of testdata/attacks: what a hostile (or an
// ordinary) portal user submits, and what the policies must answer.
type catalogueCase struct {
	// Name is the file name without .yaml.
	Name string `json:"-"`
	// Verdict is allow or deny.
	Verdict string `json:"verdict"`
	// Want is a substring of the denial message.
	Want string `json:"want"`
	// Engines overrides Verdict and Want per engine (vap, kyverno).
	Engines map[string]engineVerdict `json:"engines"`
	// PSS names the Pod Security Standards control the case proves, if any.
	PSS string `json:"pss"`
	// Operation: create (default), update, ephemeralcontainers, resize,
	// status or delete (the user deletes her pod, once bound to a node, with
	// DeleteOptions; a dry run).
	Operation string `json:"operation"`
	// DeleteOptions are the options of a delete case.
	DeleteOptions map[string]any `json:"deleteOptions"`
	// Patch is a strategic merge patch onto the user's well-formed pod: the
	// pod created (create), or the change made to it once created.
	Patch map[string]any `json:"patch"`
	// Objects, instead of the well-formed pod, are created as they are (a
	// Pod, a Service, a ConfigMap, ...), in order.
	Objects []map[string]any `json:"objects"`
	// Expect is a subset every created Pod must hold afterwards (mutations,
	// LimitRange defaults).
	Expect map[string]any `json:"expect"`
	// Kyverno is the ClusterPolicy rule ("policy/rule" without the name
	// prefix) that decides the case, for the Kyverno CLI suite generated from
	// the catalogue (create cases only: the CLI has no UPDATE, LimitRanger or
	// API server defaulting).
	Kyverno string `json:"kyverno"`
}

type engineVerdict struct {
	Verdict string `json:"verdict"`
	Want    string `json:"want"`
}

// verdict is the case's expected verdict and message under engine.
func (c catalogueCase) verdict(engine string) (string, string) {
	v, w := c.Verdict, c.Want
	if e, ok := c.Engines[engine]; ok {
		if e.Verdict != "" {
			v = e.Verdict
		}
		if e.Want != "" {
			w = e.Want
		}
	}
	return v, w
}

// catalogueDir is charts/tests/testdata/attacks.
const catalogueDir = "testdata/attacks"

// loadCatalogue reads every case, with the user's identity substituted for
// ${UID}, ${GID}, ${GID2}, ${USER}, ${HOME}, ${ACCOUNT} and ${NAMESPACE}.
func loadCatalogue(t *testing.T, vars map[string]string) []catalogueCase {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(catalogueDir, "cases", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no cases in %s/cases: %v", catalogueDir, err)
	}
	var out []catalogueCase
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		for k, v := range vars {
			text = strings.ReplaceAll(text, "${"+k+"}", v)
		}
		if i := strings.Index(text, "${"); i >= 0 {
			t.Fatalf("%s: unknown placeholder at %q", f, text[i:min(len(text), i+20)])
		}
		var c catalogueCase
		if err := yaml.UnmarshalStrict([]byte(text), &c); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		c.Name = strings.TrimSuffix(filepath.Base(f), ".yaml")
		if c.Verdict != "allow" && c.Verdict != "deny" {
			t.Fatalf("%s: verdict %q, want allow or deny", f, c.Verdict)
		}
		if c.Verdict == "deny" && c.Want == "" {
			t.Fatalf("%s: a denial needs the words it must contain (want)", f)
		}
		out = append(out, c)
	}
	return out
}

// catalogueUser is the portal user the catalogue acts as, in a namespace
// named with the install's prefix and no label at all: the rules apply by
// name.
type catalogueUser struct {
	Name, Namespace string
	Client          kubernetes.Interface
	Dynamic         dynamic.Interface
	Vars            map[string]string
}

// installCatalogue installs the policies chart alone with
// testdata/attacks/values.yaml and engine, identity from ConfigMaps and
// namespaces named "c-<engine>-*" (so the umbrella's own policies, which
// select "user-*", stay out of the way), and makes alice's namespace with the
// default ResourceQuota and LimitRange of namespace-bootstrap's chart.
// It is done once per engine and test binary (the release and the namespace
// stay: they affect only c-<engine>-* namespaces).
func installCatalogue(t *testing.T, engine string) *catalogueUser {
	t.Helper()
	catalogueMu.Lock()
	defer catalogueMu.Unlock()
	if u, ok := catalogueUsers[engine]; ok {
		return u
	}
	u := doInstallCatalogue(t, engine)
	catalogueUsers[engine] = u
	return u
}

var (
	catalogueMu    sync.Mutex
	catalogueUsers = map[string]*catalogueUser{}
)

func doInstallCatalogue(t *testing.T, engine string) *catalogueUser {
	t.Helper()
	installUmbrella(t) // the ood-user ClusterRole
	ctx := context.Background()
	release := "cat-" + engine
	prefix := "c-" + engine + "-"
	if _, err := helm(t, "install", release, subchart(t, "policies"), "--namespace", release, "--create-namespace",
		"--values", filepath.Join(catalogueDir, "values.yaml"),
		"--set", "engine="+engine, "--set", "namePrefix="+release, "--set", "namespacePrefix="+prefix,
		"--set", "configMaps.namespace="+release); err != nil {
		t.Fatalf("install the policies chart with engine %s: %v", engine, err)
	}
	admin := env.Kube.Client
	// The classes the allow-lists name, and one they do not: the API server
	// would reject a pod naming a class that does not exist before any policy.
	for _, pc := range []string{"hpc-batch"} {
		_, err := admin.SchedulingV1().PriorityClasses().Create(ctx, &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: pc}, Value: 1000}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	for _, rc := range []string{"runc-unconfined"} {
		_, err := admin.NodeV1().RuntimeClasses().Create(ctx, &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: rc}, Handler: "runc"}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	u := &catalogueUser{Name: "alice", Namespace: prefix + "alice"}
	u.Vars = map[string]string{"UID": "10001", "GID": "10001", "GID2": "20001", "USER": u.Name, "HOME": "/users/alice",
		"ACCOUNT": "pzs0001", "NAMESPACE": u.Namespace}
	maps := map[string]string{"user-uid-map": "10001", "user-gid-map": "10001", "user-gids-map": `["10001","20001"]`,
		"user-groups-map": `["alice","pzs0001"]`, "user-home-map": "/users/alice"}
	for name, v := range maps {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{u.Namespace: v}}
		if _, err := admin.CoreV1().ConfigMaps(release).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// No labels: the policies apply because of the name.
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: u.Namespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	quota, limits := bootstrapQuota(t)
	if _, err := admin.CoreV1().ResourceQuotas(u.Namespace).Create(ctx, quota, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CoreV1().LimitRanges(u.Namespace).Create(ctx, limits, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	bindUser(t, &user{Name: u.Name, Namespace: u.Namespace})
	cfg := env.Kube.ConfigAs(u.Name)
	cfg.QPS, cfg.Burst = 200, 400
	var err error
	if u.Client, err = testenv.ClientFor(cfg); err != nil {
		t.Fatal(err)
	}
	if u.Dynamic, err = dynamic.NewForConfig(cfg); err != nil {
		t.Fatal(err)
	}
	// Wait until the policies are enforced: a pod on the host network.
	probe := catalogueBasePod(t, u)
	probe.Spec.HostNetwork = true
	if err := pollDenied(ctx, func() error {
		_, err := u.Client.CoreV1().Pods(u.Namespace).Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err
	}, "host namespaces are not allowed"); err != nil {
		t.Fatal(err)
	}
	return u
}

// bootstrapQuota is the default ResourceQuota and LimitRange of every user
// namespace, from namespace-bootstrap's chart values (what its
// template/30-quota.yaml renders).
func bootstrapQuota(t *testing.T) (*corev1.ResourceQuota, *corev1.LimitRange) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(subchart(t, "namespace-bootstrap"), "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		ResourceQuota map[string]string `json:"resourceQuota"`
		LimitRange    struct {
			Default, DefaultRequest, Max map[string]string
		} `json:"limitRange"`
	}
	if err := yaml.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	list := func(m map[string]string) corev1.ResourceList {
		out := corev1.ResourceList{}
		for k, q := range m {
			out[corev1.ResourceName(k)] = resource.MustParse(q)
		}
		return out
	}
	if len(v.ResourceQuota) == 0 || len(v.LimitRange.Default) == 0 || len(v.LimitRange.DefaultRequest) == 0 {
		t.Fatalf("namespace-bootstrap's values have no default ResourceQuota or LimitRange: %+v", v)
	}
	q := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "user-quota"}, Spec: corev1.ResourceQuotaSpec{Hard: list(v.ResourceQuota)}}
	lr := &corev1.LimitRange{ObjectMeta: metav1.ObjectMeta{Name: "user-limits"}, Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{
		Type: corev1.LimitTypeContainer, Default: list(v.LimitRange.Default), DefaultRequest: list(v.LimitRange.DefaultRequest)}}}}
	return q, lr
}

// catalogueBasePod is the user's well-formed pod (testdata/attacks/pod.yaml).
func catalogueBasePod(t *testing.T, u *catalogueUser) *corev1.Pod {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(catalogueDir, "pod.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	for k, v := range u.Vars {
		text = strings.ReplaceAll(text, "${"+k+"}", v)
	}
	var p corev1.Pod
	if err := yaml.UnmarshalStrict([]byte(text), &p); err != nil {
		t.Fatalf("pod.yaml: %v", err)
	}
	return &p
}

// runCatalogue creates every case of testdata/attacks through the real API
// server as the user, with the policies of engine installed, and compares
// the verdict. Cases run in parallel: creations are server-side dry runs
// (admission, quota and defaulting run in full; nothing is stored), UPDATE
// cases use a pod of their own.
func runCatalogue(t *testing.T, engine string) {
	u := installCatalogue(t, engine)
	cases := loadCatalogue(t, u.Vars)
	base := catalogueBasePod(t, u)
	// The well-formed pod itself is admitted.
	if _, err := u.Client.CoreV1().Pods(u.Namespace).Create(context.Background(), base, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Fatalf("create the well-formed pod (testdata/attacks/pod.yaml) as %s: %v", u.Name, err)
	}
	var mu sync.Mutex
	verdicts := map[string]string{}
	t.Run("cases", func(t *testing.T) {
		for _, c := range cases {
			t.Run(c.Name, func(t *testing.T) {
				t.Parallel()
				want, words := c.verdict(engine)
				err := runCase(t, u, base, c)
				got := "allow"
				if err != nil {
					got = "deny"
				}
				mu.Lock()
				verdicts[c.Name] = got
				mu.Unlock()
				switch {
				case want == "allow" && err != nil:
					t.Errorf("%s (%s): denied, want admitted: %v", c.Name, engine, err)
				case want == "deny" && !catalogueDenied(err, words):
					t.Errorf("%s (%s): err = %v, want a denial containing %q", c.Name, engine, err, words)
				}
			})
		}
	})
	names := make([]string, 0, len(verdicts))
	for n := range verdicts {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "%s=%s ", n, verdicts[n])
	}
	t.Logf("catalogue under %s: %d cases: %s", engine, len(names), b.String())
}

// catalogueDenied reports whether err is an admission denial (by a
// ValidatingAdmissionPolicy, 403 or 422, or by Kyverno's webhook, whose
// status code is its own) whose message holds want.
func catalogueDenied(err error, want string) bool {
	return err != nil && (isDenied(err, want) || strings.Contains(err.Error(), "admission webhook") && strings.Contains(err.Error(), want))
}

// runCase submits one case and returns the API server's answer to the step
// under test.
func runCase(t *testing.T, u *catalogueUser, base *corev1.Pod, c catalogueCase) error {
	ctx := context.Background()
	dry := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	if len(c.Objects) > 0 {
		for i, o := range c.Objects {
			obj := &unstructured.Unstructured{Object: o}
			gvr, err := resourceFor(obj)
			if err != nil {
				t.Fatalf("%s: object %d: %v", c.Name, i, err)
			}
			var got *unstructured.Unstructured
			err = retryQuotaConflict(func() (err error) {
				got, err = u.Dynamic.Resource(gvr).Namespace(u.Namespace).Create(ctx, obj, dry)
				return err
			})
			if err != nil {
				return fmt.Errorf("%s %s: %w", obj.GetKind(), obj.GetName(), err)
			}
			if obj.GetKind() == "Pod" {
				checkExpect(t, c, got.Object)
			}
		}
		return nil
	}
	pod := base.DeepCopy()
	op := c.Operation
	if op == "" {
		op = "create"
	}
	if op == "create" {
		pod = patchPod(t, c.Name, pod, c.Patch)
		var got *corev1.Pod
		err := retryQuotaConflict(func() (err error) {
			got, err = u.Client.CoreV1().Pods(u.Namespace).Create(ctx, pod, dry)
			return err
		})
		if err == nil {
			checkExpect(t, c, toMap(t, got))
		}
		return err
	}
	// UPDATE cases: a real pod of their own, then the change.
	pod.Name = "upd-" + c.Name
	var created *corev1.Pod
	err := retryQuotaConflict(func() (err error) {
		created, err = u.Client.CoreV1().Pods(u.Namespace).Create(ctx, pod, metav1.CreateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("%s: create the pod to update: %v", c.Name, err)
	}
	t.Cleanup(func() {
		_ = env.Kube.Client.CoreV1().Pods(u.Namespace).Delete(context.Background(), created.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr(int64(0))})
	})
	if op == "delete" {
		return deleteCase(t, u, created, c)
	}
	patch, err := json.Marshal(c.Patch)
	if err != nil {
		t.Fatal(err)
	}
	// ood-user grants neither pods/resize, pods/ephemeralcontainers nor
	// pods/status: those changes are made as the admin (kubectl debug by a
	// support engineer; a stolen token that may write pods/status), whom the
	// policies bind as well.
	return retryQuotaConflict(func() (err error) {
		switch op {
		case "update":
			_, err = u.Client.CoreV1().Pods(u.Namespace).Patch(ctx, created.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
		case "resize", "ephemeralcontainers", "status":
			_, err = env.Kube.Client.CoreV1().Pods(u.Namespace).Patch(ctx, created.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, op)
		default:
			t.Fatalf("%s: unknown operation %q", c.Name, op)
		}
		return err
	})
}

// quotaBackoff spaces the retries of a request that lost the race for the
// namespace's ResourceQuota: the catalogue's cases run in parallel against
// one quota, and the API server's quota admission answers 409 Conflict when
// its own retries against a concurrent status update run out. Clients
// (kubectl, controllers) retry such a conflict; the request is unchanged.
var quotaBackoff = wait.Backoff{Steps: 12, Duration: 10 * time.Millisecond, Factor: 1.5, Jitter: 0.5}

// retryQuotaConflict runs f again while it fails with a ResourceQuota
// conflict, and returns any other answer (a denial included) at once.
func retryQuotaConflict(f func() error) error {
	return retry.OnError(quotaBackoff, isQuotaConflict, f)
}

func isQuotaConflict(err error) bool {
	return apierrors.IsConflict(err) && strings.Contains(err.Error(), "resourcequotas")
}

// deleteCase binds the pod to a node as the scheduler would (the API server
// deletes an unscheduled pod at once, whatever grace period is asked), then
// deletes it as the user with the case's DeleteOptions, as a dry run.
func deleteCase(t *testing.T, u *catalogueUser, pod *corev1.Pod, c catalogueCase) error {
	ctx := context.Background()
	binding := &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: pod.Name}, Target: corev1.ObjectReference{Kind: "Node", Name: "node-" + c.Name}}
	if err := env.Kube.Client.CoreV1().Pods(u.Namespace).Bind(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatalf("%s: bind the pod to a node: %v", c.Name, err)
	}
	var opts metav1.DeleteOptions
	b, err := json.Marshal(c.DeleteOptions)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &opts); err != nil {
		t.Fatalf("%s: deleteOptions: %v", c.Name, err)
	}
	opts.DryRun = []string{metav1.DryRunAll}
	return u.Client.CoreV1().Pods(u.Namespace).Delete(ctx, pod.Name, opts)
}

// patchPod applies a strategic merge patch (containers merge by name).
func patchPod(t *testing.T, name string, pod *corev1.Pod, patch map[string]any) *corev1.Pod {
	t.Helper()
	if patch == nil {
		return pod
	}
	orig, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	p, err := json.Marshal(patch)
	if err != nil {
		t.Fatal(err)
	}
	merged, err := strategicpatch.StrategicMergePatch(orig, p, corev1.Pod{})
	if err != nil {
		t.Fatalf("%s: patch: %v", name, err)
	}
	var out corev1.Pod
	if err := json.Unmarshal(merged, &out); err != nil {
		t.Fatalf("%s: patched pod: %v", name, err)
	}
	return &out
}

func toMap(t *testing.T, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// checkExpect fails the case when the admitted pod does not hold c.Expect.
func checkExpect(t *testing.T, c catalogueCase, got map[string]any) {
	t.Helper()
	if c.Expect == nil {
		return
	}
	if path, ok := subset(c.Expect, got, ""); !ok {
		gb, _ := json.Marshal(got["spec"])
		t.Errorf("%s: the admitted pod differs from expect at %s; spec: %s", c.Name, path, gb)
	}
}

// subset reports whether want is contained in got (maps by key, lists by
// position, scalars equal by their JSON form); if not, where.
func subset(want, got any, path string) (string, bool) {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return path, false
		}
		for k, v := range w {
			if p, ok := subset(v, g[k], path+"."+k); !ok {
				return p, false
			}
		}
		return "", true
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) < len(w) {
			return path, false
		}
		for i := range w {
			if p, ok := subset(w[i], g[i], fmt.Sprintf("%s[%d]", path, i)); !ok {
				return p, false
			}
		}
		return "", true
	default:
		a, _ := json.Marshal(want)
		b, _ := json.Marshal(got)
		if string(a) == string(b) {
			return "", true
		}
		// Quantities: "1" and 1, "1000m" and "1".
		ws, wok := want.(string)
		gs, gok := got.(string)
		if wok && gok {
			wq, err1 := resource.ParseQuantity(ws)
			gq, err2 := resource.ParseQuantity(gs)
			if err1 == nil && err2 == nil && wq.Cmp(gq) == 0 {
				return "", true
			}
		}
		return path, reflect.DeepEqual(want, got)
	}
}

// resourceFor maps the catalogue's kinds to their resources.
func resourceFor(o *unstructured.Unstructured) (schema.GroupVersionResource, error) {
	switch o.GetKind() {
	case "Pod":
		return schema.GroupVersionResource{Version: "v1", Resource: "pods"}, nil
	case "Service":
		return schema.GroupVersionResource{Version: "v1", Resource: "services"}, nil
	case "ConfigMap":
		return schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}, nil
	case "Secret":
		return schema.GroupVersionResource{Version: "v1", Resource: "secrets"}, nil
	}
	return schema.GroupVersionResource{}, fmt.Errorf("kind %q is not in the catalogue's list", o.GetKind())
}

// TestAttackCatalogueVAP runs the attack catalogue (testdata/attacks) against
// the ValidatingAdmissionPolicies (and the MutatingAdmissionPolicy) on the
// real API server.
func TestAttackCatalogueVAP(t *testing.T) {
	runCatalogue(t, "vap")
}

// runNodePortRange installs the Service rule alone with
// services.nodePortRange 30000-30999 and proves a Service naming a node port
// outside it is denied and one inside admitted. (The API server allocates a
// node port before admission, so the range must cover its
// --service-node-port-range allocations; the catalogue's install leaves it
// open so that Open OnDemand's Service, which names no port, is admitted.)
func runNodePortRange(t *testing.T, engine string) {
	t.Helper()
	ctx := context.Background()
	release, prefix := "ports-"+engine, "p-"+engine+"-"
	args := []string{"install", release, subchart(t, "policies"), "--namespace", release, "--create-namespace",
		"--set", "engine=" + engine, "--set", "namePrefix=" + release, "--set", "namespacePrefix=" + prefix,
		"--set", "services.nodePortRange.min=30000", "--set", "services.nodePortRange.max=30999"}
	for _, r := range []string{"identity", "supplementalGroups", "account", "resources", "lifetime", "registries", "hostAccess",
		"immutableMetadata", "namespaceIdentity", "confinement", "volumes", "scheduling", "podTotals"} {
		args = append(args, "--set", "rules."+r+"=false")
	}
	if _, err := helm(t, args...); err != nil {
		t.Fatalf("install the Service rule: %v", err)
	}
	t.Cleanup(func() { _, _ = helm(t, "uninstall", release, "--namespace", release) })
	ns := prefix + "alice"
	if _, err := env.Kube.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = env.Kube.Client.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
	})
	u := bindUser(t, &user{Name: "alice", Namespace: ns})
	svc := func(port int32) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{GenerateName: "app-"}, Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeNodePort, Selector: map[string]string{"job": "1"},
			Ports: []corev1.ServicePort{{Port: 80, NodePort: port}}}}
	}
	dry := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	if err := pollDenied(ctx, func() error {
		_, err := u.Client.CoreV1().Services(ns).Create(ctx, svc(31500), dry)
		return err
	}, "node ports must be between 30000 and 30999"); err != nil {
		t.Errorf("a Service on node port 31500: %v", err)
	}
	if _, err := u.Client.CoreV1().Services(ns).Create(ctx, svc(30500), dry); err != nil {
		t.Errorf("a Service on node port 30500 (in the range): %v", err)
	}
}

// TestNodePortRangeVAP: services.nodePortRange under the VAP engine.
func TestNodePortRangeVAP(t *testing.T) {
	installUmbrella(t)
	runNodePortRange(t, "vap")
}

// TestAttackCatalogueKyverno runs the attack catalogue against the Kyverno
// ClusterPolicies enforced by a running Kyverno admission controller
// (pkg/testenv StartKyverno, its webhooks on the test API server), through
// the real API server, and the node port range check.
func TestAttackCatalogueKyverno(t *testing.T) {
	installUmbrella(t)
	ky := env.StartKyverno(t, testenv.KyvernoOptions{})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("Kyverno's log:\n%s", ky.LogTail())
		}
	})
	runNodePortRange(t, "kyverno")
	runCatalogue(t, "kyverno")
}

// TestSupplementalGroupsMutationRendered proves supplementalGroupsMutation
// decides whether the chart sets supplementalGroupsPolicy (a
// MutatingAdmissionPolicy with VAP, a mutate rule with Kyverno) and that the
// API server accepts the MutatingAdmissionPolicy as rendered offline.
func TestSupplementalGroupsMutationRendered(t *testing.T) {
	for _, c := range []struct {
		engine, value, want string
		rendered            bool
	}{
		{"vap", "true", "kind: MutatingAdmissionPolicy", true},
		{"vap", "false", "kind: MutatingAdmissionPolicy", false},
		{"kyverno", "auto", "name: kubehpc-pod-mutate", true},
		{"kyverno", "false", "name: kubehpc-pod-mutate", false},
	} {
		out, err := helm(t, "template", "kubehpc", subchart(t, "policies"), "--set", "engine="+c.engine,
			"--set", "supplementalGroupsMutation="+c.value, "--set", "rules.supplementalGroupsPolicyStrict=true")
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(out, c.want); got != c.rendered {
			t.Errorf("engine %s, supplementalGroupsMutation %s: %q rendered = %v, want %v", c.engine, c.value, c.want, got, c.rendered)
		}
		if c.engine == "vap" && c.rendered {
			path := filepath.Join(t.TempDir(), "policies.yaml")
			if err := os.WriteFile(path, []byte(out), 0o600); err != nil {
				t.Fatal(err)
			}
			if out, err := kubectl(t, "apply", "--dry-run=server", "-f", path); err != nil {
				t.Errorf("kubectl apply --dry-run=server of the policies with the MutatingAdmissionPolicy: %v\n%s", err, out)
			}
		}
	}
}

// TestRetryQuotaConflict: only the quota's conflict is retried; a denial, or
// a conflict on the object itself, is the answer.
func TestRetryQuotaConflict(t *testing.T) {
	quota := apierrors.NewConflict(schema.GroupResource{Resource: "resourcequotas"}, "user-quota", fmt.Errorf("the object has been modified"))
	pod := apierrors.NewConflict(schema.GroupResource{Resource: "pods"}, "p", fmt.Errorf("the object has been modified"))
	denied := apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "p", fmt.Errorf("denied by policy"))
	for _, tc := range []struct {
		name      string
		answers   []error
		wantCalls int
		want      error
	}{
		{"quota conflict then admitted", []error{quota, quota, nil}, 3, nil},
		{"quota conflict then denied", []error{quota, denied}, 2, denied},
		{"denied at once", []error{denied}, 1, denied},
		{"conflict on the pod", []error{pod}, 1, pod},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			err := retryQuotaConflict(func() error {
				calls++
				return tc.answers[calls-1]
			})
			if calls != tc.wantCalls || err != tc.want {
				t.Errorf("calls = %d, err = %v; want %d, %v", calls, err, tc.wantCalls, tc.want)
			}
		})
	}
}
