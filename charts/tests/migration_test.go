package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/kubehpc/kubehpc/pkg/app"
	"github.com/kubehpc/kubehpc/pkg/testenv"
)

// The OSC state the migration test starts from, written by us from the
// formats in shared/reference/osc-originals.md: what k8-ldap-configmap
// v0.16 (memberuid scheme, --user-prefix=user-, mappers user-uid, user-gid,
// user-gids, user-groups) writes for the seed directory, and what
// k8s-bootstrap-ondemand.sh leaves for each user who logged in.
const (
	oscMapsNamespace = "k8-ldap-configmap"
	// oscFieldManager is the manager the API server records for OSC's
	// tool: it writes with Update and no FieldManager, so the server takes
	// the name from its user agent.
	oscFieldManager = "k8-ldap-configmap"
	oscUserAgent    = "k8-ldap-configmap/v0.16.0 (linux/amd64) kubernetes/$Format"
)

// oscUser is one user as OSC's tools know them.
type oscUser struct {
	name, uid, gid string
	gids, groups   []string
	// loggedIn: the hook made the user's namespace (it fails for a dotted
	// name: user-john.smith is no valid namespace name).
	loggedIn bool
}

var oscUsers = []oscUser{
	{"alice", "10001", "10001", []string{"10001", "20001", "20100"}, []string{"alice", "hpcusers", "pzs0001"}, true},
	{"bob", "10002", "10002", []string{"10002", "20001", "20100"}, []string{"bob", "hpcusers", "pzs0001"}, true},
	{"carol", "10004", "10004", []string{"10004", "20001", "20002", "20003", "20004", "20005", "20006", "20007", "20008", "20100"},
		[]string{"carol", "hpcusers", "pzs0001", "pzs0002", "pzs0003", "pzs0004", "pzs0005", "pzs0006", "pzs0007", "pzs0008"}, true},
	{"dave", "10005", "10005", []string{"10005", "20100"}, []string{"dave", "hpcusers"}, true},
	{"john.smith", "10003", "10003", []string{"10003", "20002", "20100"}, []string{"hpcusers", "john.smith", "pzs0002"}, false},
}

// oscMaps renders the four ConfigMaps' data as OSC's tool does: key
// user-prefix + raw username, JSON arrays of strings.
func oscMaps() map[string]map[string]string {
	out := map[string]map[string]string{"user-uid-map": {}, "user-gid-map": {}, "user-gids-map": {}, "user-groups-map": {}}
	for _, u := range oscUsers {
		k := "user-" + u.name
		gids, _ := json.Marshal(u.gids)
		groups, _ := json.Marshal(u.groups)
		out["user-uid-map"][k] = u.uid
		out["user-gid-map"][k] = u.gid
		out["user-gids-map"][k] = string(gids)
		out["user-groups-map"][k] = string(groups)
	}
	return out
}

// oscOnDemandRBAC is the part of OnDemand's hooks/k8s-bootstrap/ondemand.yaml
// the users' RoleBindings point at (applied with kubectl, not Helm), and the
// ClusterRole OSC's job-pod-reaper chart (release job-pod-reaper) owns.
const oscOnDemandRBAC = `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: ood-user
rules:
  - apiGroups: [""]
    resources: [services, pods, configmaps, secrets, pods/log]
    verbs: [get, watch, list, create, update, patch, delete]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: ood-initializer
rules:
  - apiGroups: [""]
    resources: [secrets]
    verbs: [get, create, update, patch]
  - apiGroups: [""]
    resources: [services, pods]
    verbs: [get]
  - apiGroups: [""]
    resources: [configmaps]
    verbs: [update, get, patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: job-pod-reaper
  labels:
    app.kubernetes.io/managed-by: Helm
  annotations:
    meta.helm.sh/release-name: job-pod-reaper
    meta.helm.sh/release-namespace: job-pod-reaper
rules:
  - apiGroups: [""]
    resources: [pods, services, configmaps, secrets]
    verbs: [list, delete]
`

// oscHookObjects is what k8s-bootstrap-ondemand.sh renders with envsubst and
// applies with one client-side kubectl apply, for USE_JOB_POD_REAPER=true
// and NETWORK_POLICY_ALLOW_CIDR=10.0.0.0/24.
func oscHookObjects(user string, loginUnix int64) string {
	ns := "user-" + user
	return fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata:
  name: %[1]s
  labels:
    app.kubernetes.io/name: open-ondemand
  annotations:
    openondemand.org/last-hook-execution: "%[3]d"
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: deny-from-other-namespaces
  namespace: %[1]s
spec:
  podSelector: {}
  ingress:
    - from:
        - podSelector: {}
        - ipBlock:
            cidr: 10.0.0.0/24
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: %[2]s-ood-initializer
  namespace: %[1]s
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: ood-initializer
subjects:
  - kind: ServiceAccount
    name: default
    namespace: %[1]s
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: %[2]s-ood-user
  namespace: %[1]s
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: ood-user
subjects:
  - apiGroup: rbac.authorization.k8s.io
    kind: User
    name: %[2]s
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: %[2]s-job-pod-reaper-rolebinding
  namespace: %[1]s
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: job-pod-reaper
subjects:
  - kind: ServiceAccount
    name: job-pod-reaper
    namespace: job-pod-reaper
`, ns, user, loginUnix)
}

// migrationDocValues returns docs/migrating-from-osc.md's step 1 values
// file (the first yaml block after the step's heading).
func migrationDocValues(t *testing.T) string {
	t.Helper()
	doc := migrationDoc(t)
	i := strings.Index(doc, "### 1. Install beside the old tools")
	if i < 0 {
		t.Fatal("docs/migrating-from-osc.md has no step 1")
	}
	rest := doc[i:]
	start := strings.Index(rest, "```yaml\n")
	if start < 0 {
		t.Fatal("docs/migrating-from-osc.md step 1 has no yaml block")
	}
	rest = rest[start+len("```yaml\n"):]
	end := strings.Index(rest, "```")
	if end < 0 {
		t.Fatal("docs/migrating-from-osc.md step 1's yaml block does not end")
	}
	return rest[:end]
}

func migrationDoc(t *testing.T) string {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "docs", "migrating-from-osc.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// migrationTestValues go over the doc's step 1 values: the test directory,
// and the policies enforcing (Deny) on OSC's maps from the start instead of
// OSC's Kyverno policies (absent here): the strictest way to prove no user
// is locked out.
func migrationTestValues(ldapURL string) string {
	return fmt.Sprintf(`ldap-configmap:
  ldap:
    url: %[1]s
    preset: rfc2307
    userBaseDN: ou=people,dc=example,dc=org
    groupBaseDN: ou=groups,dc=example,dc=org
namespace-bootstrap:
  networkPolicy:
    allowCIDRs: [10.0.0.0/24]
policies:
  engine: vap
  identitySource: configMaps
  configMaps:
    namespace: %[2]s
  validationActions: [Deny]
  registries: [registry.example.org]
  hostPaths:
    allowed: [/fs/scratch, /apps]
`, ldapURL, oscMapsNamespace)
}

// migrationDocCommands returns the doc's helm upgrade commands, in order,
// each as its --set arguments.
func migrationDocCommands(t *testing.T) [][]string {
	t.Helper()
	var cmds [][]string
	for _, line := range strings.Split(migrationDoc(t), "\n") {
		i := strings.Index(line, "helm upgrade kubehpc charts/kubehpc")
		if i < 0 {
			continue
		}
		cmd := line[i:]
		if j := strings.Index(cmd, "`"); j >= 0 {
			cmd = cmd[:j]
		}
		words := shellWords(cmd)
		var set []string
		for k := 0; k < len(words); k++ {
			if words[k] == "--set" && k+1 < len(words) {
				set = append(set, "--set", words[k+1])
				k++
			}
		}
		cmds = append(cmds, set)
	}
	return cmds
}

// TestMigrationDocCommands renders the umbrella with the doc's step 1 values
// and then each of its helm upgrade commands in turn (as --reuse-values
// does), so the documented cut-over stays valid against the charts' schemas;
// step 1 writes nothing and leaves the policies to OSC's.
func TestMigrationDocCommands(t *testing.T) {
	values := filepath.Join(t.TempDir(), "migrate-values.yaml")
	if err := os.WriteFile(values, []byte(migrationDocValues(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"template", "kubehpc", umbrella(t), "--namespace", "kubehpc", "--values", values}
	out, err := helm(t, args...)
	if err != nil {
		t.Fatalf("the doc's step 1 values: %v", err)
	}
	dry := map[string]bool{}
	for _, doc := range strings.Split(out, "\n---\n") {
		var d appsv1.Deployment
		if err := yaml.Unmarshal([]byte(doc), &d); err != nil || d.Kind != "Deployment" {
			continue
		}
		c := d.Spec.Template.Spec.Containers[0]
		dry[c.Name] = slices.Contains(c.Args, "--dry-run") || slices.Contains(c.Args, "--dry-run=true")
	}
	for _, tool := range subcharts[:4] {
		if !dry[tool] {
			t.Errorf("step 1: %s does not run with --dry-run (workloads: %v)", tool, dry)
		}
	}
	if strings.Contains(out, "kind: ValidatingAdmissionPolicy\n") && strings.Contains(out, "kubehpc-pod-identity") {
		t.Errorf("step 1 installs the pod policies; the doc leaves them to OSC's Kyverno policies until step 4")
	}
	cmds := migrationDocCommands(t)
	if len(cmds) < 5 {
		t.Fatalf("found %d helm upgrade commands in the doc, want at least 5", len(cmds))
	}
	for _, set := range cmds {
		args = append(args, set...)
		if _, err := helm(t, args...); err != nil {
			t.Errorf("the doc's command with %v (after the ones before it): %v", set, err)
		}
	}
}

// migCluster is the migration test's own control plane: the package's API
// server already holds the umbrella release, whose annotation policies
// select every open-ondemand namespace; a site migrating has OSC's state
// and no kubehpc yet.
type migCluster struct {
	kube *testenv.Kube
	dir  string
}

func (c *migCluster) kubectl(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	f := filepath.Join(c.dir, fmt.Sprintf("stdin-%d.yaml", seq.Add(1)))
	if err := os.WriteFile(f, []byte(stdin), 0o600); err != nil {
		t.Fatal(err)
	}
	args = append([]string{"--kubeconfig", c.kube.KubeconfigPath}, args...)
	if stdin != "" {
		args = append(args, "-f", f)
	}
	out, err := run(t, c.kube.Kubectl(), args...)
	return must(t, out, err)
}

func (c *migCluster) helm(t *testing.T, args ...string) {
	t.Helper()
	out, err := helm(t, append(args, "--kubeconfig", c.kube.KubeconfigPath)...)
	must(t, out, err)
}

// args renders the umbrella with the release's current values and returns
// a tool's container args and plain env, as e2e/story runs the tools.
func (c *migCluster) args(t *testing.T, tool string) ([]string, map[string]string) {
	t.Helper()
	values, err := helm(t, "get", "values", "kubehpc", "--namespace", "kubehpc", "--output", "yaml", "--kubeconfig", c.kube.KubeconfigPath)
	must(t, values, err)
	f := filepath.Join(c.dir, fmt.Sprintf("values-%d.yaml", seq.Add(1)))
	if err := os.WriteFile(f, []byte(values), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := helm(t, "template", "kubehpc", umbrella(t), "--namespace", "kubehpc", "--values", f)
	must(t, out, err)
	for _, doc := range strings.Split(out, "\n---\n") {
		var d appsv1.Deployment
		if err := yaml.Unmarshal([]byte(doc), &d); err != nil || d.Kind != "Deployment" || d.Spec.Template.Spec.Containers[0].Name != tool {
			continue
		}
		ct := d.Spec.Template.Spec.Containers[0]
		envs := map[string]string{"POD_NAMESPACE": "kubehpc", "POD_NAME": tool + "-0"}
		for _, e := range ct.Env {
			if e.ValueFrom == nil {
				envs[e.Name] = e.Value
			}
		}
		return ct.Args, envs
	}
	t.Fatalf("no Deployment of %s rendered", tool)
	return nil, nil
}

// runTool runs a tool in this process, exactly as its main.go does, with
// the chart's args, as the chart's ServiceAccount (its RBAC and nothing
// more), once; extra flags come last and win.
func (c *migCluster) runTool(t *testing.T, tool string, extra ...string) (string, error) {
	t.Helper()
	args, envs := c.args(t, tool)
	kc := filepath.Join(c.dir, tool+".kubeconfig")
	if err := c.kube.WriteKubeconfigAs(kc, "system:serviceaccount:kubehpc:"+tool, testenv.ServiceAccountGroups("kubehpc")...); err != nil {
		t.Fatal(err)
	}
	args = append(args, "--kubeconfig="+kc, "--admin-address=", "--log-format=json", "--once")
	args = append(args, extra...)
	tl, cmd := tools[tool]()
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := app.Run(ctx, tl, args, func(k string) (string, bool) { v, ok := envs[k]; return v, ok }, &out, cmd)
	return out.String(), err
}

// migPod is goodPod for an OSC user, without host paths (OSC's maps have no
// home directories).
func migPod(u oscUser, client kubernetes.Interface) *corev1.Pod {
	p := goodPod(&user{Name: u.name, Namespace: "user-" + u.name, UID: u.uid, GID: u.gid, GIDs: u.gids, Groups: u.groups, Client: client})
	p.Spec.Volumes, p.Spec.Containers[0].VolumeMounts = nil, nil
	return p
}

// admitted creates each logged-in user's well-formed pod as that user
// (server-side dry run: admission runs in full, nothing is stored) and
// returns the denials.
func admitted(ctx context.Context, clients map[string]kubernetes.Interface) []string {
	var denied []string
	for _, u := range oscUsers {
		c, ok := clients[u.name]
		if !ok {
			continue
		}
		_, err := c.CoreV1().Pods("user-"+u.name).Create(ctx, migPod(u, c), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			denied = append(denied, fmt.Sprintf("%s: %v", u.name, err))
		}
	}
	return denied
}

// TestMigrationFromOSC is docs/migrating-from-osc.md's cut-over against the
// exact state OSC's tools leave: the ConfigMaps written by k8-ldap-configmap
// (with Update, under its field manager, keys un-normalised) and the
// namespaces k8s-bootstrap-ondemand.sh made with kubectl apply. The chart is
// installed over them (with the values the doc gives), ldap-configmap's
// first real sync runs as its ServiceAccount, then namespace-bootstrap logs
// users in, then the policies move to namespace annotations. A well-formed
// pod of every user is admitted before, during and after the first sync
// (and every version of the maps the API server stored during it holds every
// user), and the old writer's keys are taken over, not duplicated.
func TestMigrationFromOSC(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	kube, err := testenv.StartKube(ctx, testenv.KubeOptions{})
	if err != nil {
		t.Fatalf("start the migration's control plane: %v", err)
	}
	t.Cleanup(kube.Stop)
	ldap, err := testenv.StartSlapd(ctx, testenv.SlapdOptions{})
	if err != nil {
		t.Fatalf("start slapd: %v", err)
	}
	t.Cleanup(ldap.Stop)
	c := &migCluster{kube: kube, dir: dir}
	admin := kube.Client

	// 1. The OSC state.
	c.kubectl(t, oscOnDemandRBAC, "apply")
	login := time.Now().Add(-time.Hour).Unix()
	clients := map[string]kubernetes.Interface{}
	for _, u := range oscUsers {
		if !u.loggedIn {
			continue
		}
		c.kubectl(t, oscHookObjects(u.name, login), "apply")
		uc, err := testenv.ClientFor(kube.ConfigAs(u.name))
		if err != nil {
			t.Fatal(err)
		}
		clients[u.name] = uc
	}
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: oscMapsNamespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	writeOSCMaps(ctx, t, kube)
	before := map[string]map[string]string{}
	for name := range oscMaps() {
		cm, err := admin.CoreV1().ConfigMaps(oscMapsNamespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !managerOwnsKeys(t, cm, oscFieldManager, "Update", cm.Data) {
			t.Fatalf("fixture: %s's keys are not owned by %s (Update); managedFields: %s", name, oscFieldManager, managersOf(cm))
		}
		before[name] = cm.Data
	}

	// 2. The chart over it, writing nothing yet, the policies enforcing on
	// OSC's maps.
	values := filepath.Join(dir, "migrate-values.yaml")
	if err := os.WriteFile(values, []byte(migrationDocValues(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	testValues := filepath.Join(dir, "test-values.yaml")
	if err := os.WriteFile(testValues, []byte(migrationTestValues(ldap.URL)), 0o600); err != nil {
		t.Fatal(err)
	}
	c.helm(t, "install", "kubehpc", umbrella(t), "--namespace", "kubehpc", "--create-namespace", "--values", values, "--values", testValues)
	waitMigrationPolicies(ctx, t, clients["alice"], "kubehpc-pod-security")
	waitAllowed(ctx, t, kube, "system:serviceaccount:kubehpc:ldap-configmap", "patch", "configmaps", oscMapsNamespace, "user-uid-map")
	// The identity policies read the maps through the API server's
	// ConfigMap informer: wait until they admit (a site installs them in
	// Warn mode first, docs step 2), then every check must pass.
	var denied []string
	if err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		denied = admitted(ctx, clients)
		return len(denied) == 0, nil
	}); err != nil {
		t.Fatalf("before the first sync, on OSC's maps: denied %v", denied)
	}

	// The dry run compares and writes nothing.
	out, err := c.runTool(t, "ldap-configmap")
	if err != nil {
		t.Fatalf("ldap-configmap --dry-run: %v\n%s", err, out)
	}
	if !strings.Contains(out, "Would update ConfigMap") || !strings.Contains(out, "user-john.smith") {
		t.Errorf("the dry run does not report the key it would replace (user-john.smith):\n%s", out)
	}
	for name, data := range before {
		cm, err := admin.CoreV1().ConfigMaps(oscMapsNamespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil || !mapsEqual(cm.Data, data) {
			t.Fatalf("the dry run changed %s: %v %v", name, cm.Data, err)
		}
	}

	// 3. The switch: the first real sync, with admission checked all along
	// and every stored version of the maps recorded.
	c.helm(t, "upgrade", "kubehpc", umbrella(t), "--namespace", "kubehpc", "--reuse-values", "--set", "ldap-configmap.dryRun=false")
	w, err := admin.CoreV1().ConfigMaps(oscMapsNamespace).Watch(ctx, metav1.ListOptions{ResourceVersion: mapsResourceVersion(ctx, t, admin)})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	// The tool runs in this process and routes klog (a global) at start,
	// so the requests made meanwhile go through plain HTTP clients, which
	// do not log through klog.
	raw := map[string]*http.Client{}
	for name := range clients {
		hc, err := rest.HTTPClientFor(kube.ConfigAs(name))
		if err != nil {
			t.Fatal(err)
		}
		raw[name] = hc
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var during []string
	rounds := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			during = append(during, admittedHTTP(ctx, kube.Host, raw)...)
			rounds++
		}
	}()
	out, err = c.runTool(t, "ldap-configmap")
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("ldap-configmap's first sync: %v\n%s", err, out)
	}
	t.Logf("%d rounds of pod admission ran during the first sync", rounds)
	if len(during) > 0 {
		t.Errorf("during the first sync: denied %v", during)
	}
	checkEveryVersion(t, w, out)
	if d := admitted(ctx, clients); len(d) > 0 {
		t.Errorf("after the first sync: denied %v", d)
	}

	// Taken over, not duplicated.
	want := map[string]map[string]string{}
	for name, data := range oscMaps() {
		want[name] = map[string]string{}
		for k, v := range data {
			want[name][strings.ReplaceAll(k, ".", "-")] = v
		}
	}
	for name, data := range want {
		cm, err := admin.CoreV1().ConfigMaps(oscMapsNamespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !mapsEqual(cm.Data, data) {
			t.Errorf("%s after the takeover = %v, want %v (OSC's keys normalised, none duplicated)", name, cm.Data, data)
		}
		if cm.Labels["app.kubernetes.io/managed-by"] != "ldap-configmap" {
			t.Errorf("%s labels %v, want app.kubernetes.io/managed-by=ldap-configmap", name, cm.Labels)
		}
		// The old writer owns nothing; no other manager owns a key
		// ldap-configmap writes.
		for _, mf := range cm.ManagedFields {
			if keys := ownedKeys(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, ManagedFields: []metav1.ManagedFieldsEntry{mf}}}, mf.Manager); len(keys) > 0 && mf.Manager != "ldap-configmap" {
				t.Errorf("%s: manager %s (%s) still owns %v after the takeover", name, mf.Manager, mf.Operation, keys)
			}
		}
	}
	cms, err := admin.CoreV1().ConfigMaps("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, cm := range cms.Items {
		if strings.HasSuffix(cm.Name, "-map") && cm.Namespace != oscMapsNamespace {
			t.Errorf("ConfigMap %s/%s: a second copy of the maps, want them only in %s", cm.Namespace, cm.Name, oscMapsNamespace)
		}
	}
	synced, err := admin.CoreV1().Events(oscMapsNamespace).List(ctx, metav1.ListOptions{FieldSelector: "reason=Synced"})
	if err != nil || len(synced.Items) != len(want) {
		t.Errorf("Synced Events in %s: %d (%v), want one per map (%d)", oscMapsNamespace, len(synced.Items), err, len(want))
	}

	// 4. Logins through namespace-bootstrap (hook mode) adopt the hook's
	// namespaces, with the same object names, and give john.smith the
	// namespace OSC's hook could not make.
	c.helm(t, "upgrade", "kubehpc", umbrella(t), "--namespace", "kubehpc", "--reuse-values", "--set", "namespace-bootstrap.dryRun=false")
	waitAllowed(ctx, t, kube, "system:serviceaccount:kubehpc:namespace-bootstrap", "create", "namespaces", "")
	for _, u := range oscUsers {
		if out, err := c.runTool(t, "namespace-bootstrap", "--user="+u.name, "--listen-address="); err != nil {
			t.Fatalf("namespace-bootstrap --user %s over the hook's namespace: %v\n%s", u.name, err, out)
		}
	}
	for _, u := range oscUsers {
		ns := "user-" + strings.ReplaceAll(u.name, ".", "-")
		rbs, err := admin.RbacV1().RoleBindings(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, rb := range rbs.Items {
			names = append(names, rb.Name)
		}
		sort.Strings(names)
		name := strings.ReplaceAll(u.name, ".", "-")
		wantRB := []string{name + "-ood-initializer", name + "-ood-user"}
		if u.loggedIn {
			wantRB = append([]string{name + "-job-pod-reaper-rolebinding"}, wantRB...)
		}
		if !slices.Equal(names, wantRB) {
			t.Errorf("RoleBindings in %s after the login = %v, want %v (the hook's names, none duplicated)", ns, names, wantRB)
		}
		n, err := admin.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if last := n.Annotations["openondemand.org/last-hook-execution"]; u.loggedIn && last == fmt.Sprint(login) {
			t.Errorf("namespace %s: last login still %s, want the new login's time", ns, last)
		}
	}
	js, err := testenv.ClientFor(kube.ConfigAs("john.smith"))
	if err != nil {
		t.Fatal(err)
	}
	clients["john.smith"] = js
	waitAllowed(ctx, t, kube, "john.smith", "create", "pods", "user-john-smith")
	if d := admittedNormalised(ctx, clients); len(d) > 0 {
		t.Errorf("after the logins: denied %v", d)
	}

	// 5. Identity on the namespaces, then the policies switched to it.
	c.helm(t, "upgrade", "kubehpc", umbrella(t), "--namespace", "kubehpc", "--reuse-values", "--set", "ldap-configmap.namespaceAnnotations.enabled=true")
	waitAllowed(ctx, t, kube, "system:serviceaccount:kubehpc:ldap-configmap", "patch", "namespaces", "")
	if out, err := c.runTool(t, "ldap-configmap"); err != nil {
		t.Fatalf("ldap-configmap with namespace annotations: %v\n%s", err, out)
	}
	c.helm(t, "upgrade", "kubehpc", umbrella(t), "--namespace", "kubehpc", "--reuse-values", "--set", "policies.identitySource=annotations")
	// The switch is in effect when the denial of a wrong UID names the user
	// as the annotations do ("the LDAP UID of alice"); on the maps it names
	// the namespace ("the LDAP UID of user-alice").
	probe := migPod(oscUsers[0], clients["alice"])
	uid := int64(10002)
	probe.Spec.SecurityContext.RunAsUser = &uid
	if err := pollDenied(ctx, func() error {
		_, err := clients["alice"].CoreV1().Pods("user-alice").Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err
	}, "the LDAP UID of alice"); err != nil {
		t.Fatalf("policies on annotations: %v", err)
	}
	if d := admittedNormalised(ctx, clients); len(d) > 0 {
		t.Errorf("after the switch to namespace annotations: denied %v", d)
	}

	// 6. A user who leaves LDAP after the takeover loses every key, also
	// those the old writer still co-owns, and their namespace identity.
	if err := ldap.Modify(ctx, "dn: uid=dave,ou=people,dc=example,dc=org\nchangetype: delete\n"); err != nil {
		t.Fatal(err)
	}
	if out, err := c.runTool(t, "ldap-configmap", "--max-drop-fraction=0.5"); err != nil {
		t.Fatalf("ldap-configmap after dave left LDAP: %v\n%s", err, out)
	}
	for name := range want {
		cm, err := admin.CoreV1().ConfigMaps(oscMapsNamespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if v, ok := cm.Data["user-dave"]; ok {
			t.Errorf("%s still has user-dave = %q after dave left LDAP (owners: %s)", name, v, managersOf(cm))
		}
	}
	if _, err := clients["dave"].CoreV1().Pods("user-dave").Create(ctx, migPod(oscUsers[3], clients["dave"]), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); !isDenied(err, "has no LDAP identity") {
		t.Errorf("dave's pod after he left LDAP: err = %v, want a denial saying he has no LDAP identity", err)
	}
}

// admittedHTTP is admitted through plain HTTP clients (a server-side dry-run
// POST of each user's pod).
func admittedHTTP(ctx context.Context, host string, clients map[string]*http.Client) []string {
	var denied []string
	for _, u := range oscUsers {
		c, ok := clients[u.name]
		if !ok {
			continue
		}
		p := migPod(u, nil)
		p.APIVersion, p.Kind = "v1", "Pod"
		body, _ := json.Marshal(p) // a Pod always marshals
		url := host + "/api/v1/namespaces/user-" + u.name + "/pods?dryRun=All"
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			denied = append(denied, fmt.Sprintf("%s: %v", u.name, err))
			continue
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			denied = append(denied, fmt.Sprintf("%s: %v", u.name, err))
			continue
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			denied = append(denied, fmt.Sprintf("%s: HTTP %d %s", u.name, resp.StatusCode, msg))
		}
	}
	return denied
}

// admittedNormalised is admitted with namespace names as ood_core makes them.
func admittedNormalised(ctx context.Context, clients map[string]kubernetes.Interface) []string {
	var denied []string
	for _, u := range oscUsers {
		c := clients[u.name]
		v := u
		v.name = strings.ReplaceAll(u.name, ".", "-")
		p := migPod(v, c)
		if _, err := c.CoreV1().Pods("user-"+v.name).Create(ctx, p, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
			denied = append(denied, fmt.Sprintf("%s: %v", u.name, err))
		}
	}
	return denied
}

// writeOSCMaps writes the maps as OSC's tool does: GET, NotFound, CREATE
// (here with a first, smaller directory), then an unconditional UPDATE of
// the whole object at the next interval, with its user agent and no field
// manager.
func writeOSCMaps(ctx context.Context, t *testing.T, kube *testenv.Kube) {
	t.Helper()
	cfg := rest.CopyConfig(kube.Config)
	cfg.UserAgent = oscUserAgent
	osc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range oscMaps() {
		first := map[string]string{"user-alice": data["user-alice"]}
		if _, err := osc.CoreV1().ConfigMaps(oscMapsNamespace).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: first}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := osc.CoreV1().ConfigMaps(oscMapsNamespace).Update(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: data}, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// ownedKeys returns the data keys a field manager owns in a ConfigMap.
func ownedKeys(t *testing.T, cm *corev1.ConfigMap, manager string) []string {
	t.Helper()
	var keys []string
	for _, mf := range cm.ManagedFields {
		if mf.Manager != manager || mf.FieldsV1 == nil {
			continue
		}
		var fields map[string]map[string]any
		if err := json.Unmarshal(mf.FieldsV1.GetRawBytes(), &fields); err != nil {
			t.Fatalf("managedFields of %s: %v", cm.Name, err)
		}
		for k := range fields["f:data"] {
			if key, ok := strings.CutPrefix(k, "f:"); ok {
				keys = append(keys, key)
			}
		}
	}
	sort.Strings(keys)
	return keys
}

// managerOwnsKeys reports whether manager, by operation, owns every key of data.
func managerOwnsKeys(t *testing.T, cm *corev1.ConfigMap, manager, operation string, data map[string]string) bool {
	t.Helper()
	for _, mf := range cm.ManagedFields {
		if mf.Manager == manager && string(mf.Operation) != operation {
			return false
		}
	}
	owned := ownedKeys(t, cm, manager)
	for k := range data {
		if !slices.Contains(owned, k) {
			return false
		}
	}
	return len(data) > 0
}

func managersOf(cm *corev1.ConfigMap) string {
	var s []string
	for _, mf := range cm.ManagedFields {
		s = append(s, fmt.Sprintf("%s/%s: %s", mf.Manager, mf.Operation, mf.FieldsV1.GetRawString()))
	}
	return strings.Join(s, "; ")
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// mapsResourceVersion is the ConfigMap list's resourceVersion, to watch from.
func mapsResourceVersion(ctx context.Context, t *testing.T, c kubernetes.Interface) string {
	t.Helper()
	l, err := c.CoreV1().ConfigMaps(oscMapsNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return l.ResourceVersion
}

// checkEveryVersion reads every version of the maps the API server stored
// during the sync (the watch's events, up to the last write) and checks each
// holds every logged-in user's identity as OSC wrote it: no state in which a
// policy could have denied a user.
func checkEveryVersion(t *testing.T, w watch.Interface, log string) {
	t.Helper()
	osc := oscMaps()
	seen := map[string]int{}
	final := map[string]bool{}
	timeout := time.After(30 * time.Second)
	for done := false; !done; {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatal("the ConfigMap watch closed")
			}
			cm, ok := ev.Object.(*corev1.ConfigMap)
			if !ok || ev.Type != watch.Modified {
				t.Errorf("unexpected event %s %T during the sync", ev.Type, ev.Object)
				continue
			}
			seen[cm.Name]++
			for _, u := range oscUsers {
				if !u.loggedIn {
					continue
				}
				k := "user-" + u.name
				if got, want := cm.Data[k], osc[cm.Name][k]; got != want {
					t.Errorf("version %s of %s: %s = %q, want %q (the user would have been denied)", cm.ResourceVersion, cm.Name, k, got, want)
				}
			}
			// Done when every map has reached its final state: the
			// normalised key in, the old writer's dotted key out.
			if _, stale := cm.Data["user-john.smith"]; !stale && cm.Data["user-john-smith"] != "" {
				final[cm.Name] = true
			}
			done = len(final) == len(osc)
		case <-timeout:
			t.Fatalf("saw %v versions of the maps, final for %v; want every map in its final state\n%s", seen, final, log)
		}
	}
}

// waitMigrationPolicies polls a known-bad pod (host network) with server-side
// dry run until a policy named want denies it.
func waitMigrationPolicies(ctx context.Context, t *testing.T, c kubernetes.Interface, want string) {
	t.Helper()
	p := migPod(oscUsers[0], c)
	p.Spec.HostNetwork = true
	if err := pollDenied(ctx, func() error {
		_, err := c.CoreV1().Pods("user-alice").Create(ctx, p, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err
	}, want); err != nil {
		t.Fatal(err)
	}
}

// waitAllowed waits until the RBAC authorizer allows user (a service account
// name carries its groups) the verb: new bindings take a moment.
func waitAllowed(ctx context.Context, t *testing.T, kube *testenv.Kube, user, verb, resource, namespace string, name ...string) {
	t.Helper()
	var groups []string
	if rest, ok := strings.CutPrefix(user, "system:serviceaccount:"); ok {
		groups = testenv.ServiceAccountGroups(strings.SplitN(rest, ":", 2)[0])
	}
	review := &authv1.SubjectAccessReview{Spec: authv1.SubjectAccessReviewSpec{User: user, Groups: groups,
		ResourceAttributes: &authv1.ResourceAttributes{Verb: verb, Resource: resource, Namespace: namespace, Name: strings.Join(name, "")}}}
	err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		res, err := kube.Client.AuthorizationV1().SubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
		return err == nil && res.Status.Allowed, nil
	})
	if err != nil {
		t.Fatalf("%s may not %s %s in %q within 30s: %v", user, verb, resource, namespace, err)
	}
}
