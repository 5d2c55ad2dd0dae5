package tests

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/kubehpc/kubehpc/pkg/walltime"
)

var seq atomic.Int64

// goodPod is a well-formed pod of u: their UID and GID everywhere, one of
// their groups as supplemental group and account, a walltime, requests and
// limits, an allowed image and hostPaths, nothing privileged.
func goodPod(u *user) *corev1.Pod {
	uid, _ := strconv.ParseInt(u.UID, 10, 64)
	gid, _ := strconv.ParseInt(u.GID, 10, 64)
	var sup []int64
	for _, g := range u.GIDs[1:] {
		n, _ := strconv.ParseInt(g, 10, 64)
		sup = append(sup, n)
	}
	strict := corev1.SupplementalGroupsPolicyStrict
	res := corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("1Gi")},
		Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("2Gi")},
	}
	csc := &corev1.SecurityContext{AllowPrivilegeEscalation: ptr(false), Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: "job-",
			Labels:       map[string]string{"account": u.Groups[len(u.Groups)-1], "job": "1234"},
			Annotations:  map[string]string{"pod.kubernetes.io/lifetime": "01h00m00s"},
		},
		Spec: corev1.PodSpec{
			SecurityContext: &corev1.PodSecurityContext{
				RunAsUser: &uid, RunAsGroup: &gid, FSGroup: &gid, RunAsNonRoot: ptr(true),
				SupplementalGroups: sup, SupplementalGroupsPolicy: &strict,
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			InitContainers: []corev1.Container{{Name: "init", Image: "registry.example.org/hpc/init:1", Resources: *res.DeepCopy(), SecurityContext: csc.DeepCopy()}},
			Containers: []corev1.Container{{
				Name: "main", Image: "registry.example.org/hpc/jupyter:1", Resources: *res.DeepCopy(), SecurityContext: csc.DeepCopy(),
				Ports: []corev1.ContainerPort{{ContainerPort: 8888}},
				VolumeMounts: []corev1.VolumeMount{
					{Name: "scratch", MountPath: "/fs/scratch"}, {Name: "home", MountPath: "/home"}, {Name: "apps", MountPath: "/apps", ReadOnly: true},
				},
			}},
			Volumes: []corev1.Volume{
				{Name: "scratch", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/fs/scratch/" + u.Name}}},
				{Name: "home", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/users/" + u.Name}}},
				{Name: "apps", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/apps"}}},
			},
		},
	}
}

// attack is one pod of the catalogue: a change to the good pod, and the
// words the denial must contain.
type attack struct {
	name   string
	mutate func(p *corev1.Pod)
	want   string
	// kyverno is the Kyverno ClusterPolicy rule ("policy/rule", without the
	// name prefix) that must fail for this pod.
	kyverno string
}

// attacks is the catalogue of the issue, and more, for user alice (UID and
// GID 10001, GIDs 10001 and 20001, groups alice and pzs0001).
var attacks = []attack{
	// The test API server runs with --allow-privileged=true, as a real
	// cluster does, so this denial comes from the policy itself.
	{"privileged", func(p *corev1.Pod) {
		p.Spec.Containers[0].SecurityContext.Privileged = ptr(true)
		p.Spec.Containers[0].SecurityContext.AllowPrivilegeEscalation = nil
	}, "privileged containers are not allowed: main", "pod-security/privileged"},
	{"hostPath /etc", func(p *corev1.Pod) { p.Spec.Volumes[0].HostPath.Path = "/etc" }, "hostPath volumes are only allowed under /fs/scratch, /apps and the user home directory; not allowed: /etc", "pod-security/host-paths"},
	{"hostPath prefix without a component boundary", func(p *corev1.Pod) { p.Spec.Volumes[0].HostPath.Path = "/fs/scratchx" }, "not allowed: /fs/scratchx", "pod-security/host-paths"},
	{"hostPath another user's home", func(p *corev1.Pod) { p.Spec.Volumes[1].HostPath.Path = "/users/bob" }, "not allowed: /users/bob", "pod-security/host-paths"},
	{"hostPath root", func(p *corev1.Pod) { p.Spec.Volumes[1].HostPath.Path = "/" }, "not allowed: /", "pod-security/host-paths"},
	{"hostNetwork", func(p *corev1.Pod) { p.Spec.HostNetwork = true }, "host namespaces are not allowed", "pod-security/host-namespaces"},
	{"hostPID", func(p *corev1.Pod) { p.Spec.HostPID = true }, "host namespaces are not allowed", "pod-security/host-namespaces"},
	{"hostIPC", func(p *corev1.Pod) { p.Spec.HostIPC = true }, "host namespaces are not allowed", "pod-security/host-namespaces"},
	{"hostPort", func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].HostPort = 8888 }, "host ports are not allowed: main", "pod-security/host-ports"},
	{"privilege escalation", func(p *corev1.Pod) { p.Spec.Containers[0].SecurityContext.AllowPrivilegeEscalation = ptr(true) }, "allowPrivilegeEscalation must be false in every container; not in: main", "pod-security/privilege-escalation"},
	{"privilege escalation unset", func(p *corev1.Pod) { p.Spec.InitContainers[0].SecurityContext.AllowPrivilegeEscalation = nil }, "allowPrivilegeEscalation must be false in every container; not in: init", "pod-security/privilege-escalation"},
	{"added capability", func(p *corev1.Pod) {
		p.Spec.Containers[0].SecurityContext.Capabilities.Add = []corev1.Capability{"NET_ADMIN"}
	}, "capabilities must drop ALL and may add only NET_BIND_SERVICE; not in: main", "pod-security/capabilities"},
	{"runAsUser of another user", func(p *corev1.Pod) { p.Spec.SecurityContext.RunAsUser = ptr(int64(10002)) }, "runAsUser must be 10001, the LDAP UID of alice", "pod-identity/run-as-user"},
	{"container runAsUser of another user", func(p *corev1.Pod) { p.Spec.Containers[0].SecurityContext.RunAsUser = ptr(int64(10002)) }, "wrong or unset in: main", "pod-identity/run-as-user"},
	{"init container as root", func(p *corev1.Pod) { p.Spec.InitContainers[0].SecurityContext.RunAsUser = ptr(int64(0)) }, "runAsUser must be 10001, the LDAP UID of alice, in the pod securityContext or in every container; wrong or unset in: init", "pod-identity/run-as-user"},
	{"root", func(p *corev1.Pod) { p.Spec.SecurityContext.RunAsUser = ptr(int64(0)) }, "runAsUser must be 10001", "pod-identity/run-as-user"},
	{"runAsUser unset", func(p *corev1.Pod) { p.Spec.SecurityContext.RunAsUser = nil }, "wrong or unset in: main, init", "pod-identity/run-as-user"},
	{"runAsNonRoot false", func(p *corev1.Pod) { p.Spec.SecurityContext.RunAsNonRoot = ptr(false) }, "runAsNonRoot must be true", "pod-identity/run-as-non-root"},
	{"runAsGroup of another group", func(p *corev1.Pod) { p.Spec.SecurityContext.RunAsGroup = ptr(int64(0)) }, "runAsGroup must be 10001, the primary LDAP GID of alice", "pod-identity/run-as-group"},
	{"fsGroup of another group", func(p *corev1.Pod) { p.Spec.SecurityContext.FSGroup = ptr(int64(20002)) }, "spec.securityContext.fsGroup must be 10001", "pod-identity/fs-group"},
	{"supplemental group the user lacks", func(p *corev1.Pod) {
		p.Spec.SecurityContext.SupplementalGroups = append(p.Spec.SecurityContext.SupplementalGroups, 20002)
	}, "supplementalGroups may only hold the LDAP groups of alice; not theirs: 20002", "pod-identity/supplemental-groups"},
	{"supplemental group that is a substring of one of the user's", func(p *corev1.Pod) {
		p.Spec.SecurityContext.SupplementalGroups = []int64{2000}
	}, "not theirs: 2000", "pod-identity/supplemental-groups"},
	// Unset is set to Strict by mutation (attacks_test.go proves it).
	{"supplementalGroupsPolicy Merge", func(p *corev1.Pod) {
		merge := corev1.SupplementalGroupsPolicyMerge
		p.Spec.SecurityContext.SupplementalGroupsPolicy = &merge
	}, "supplementalGroupsPolicy must be Strict", "pod-security/supplemental-groups-policy-strict"},
	{"account the user is not in", func(p *corev1.Pod) { p.Labels["account"] = "pzs0002" }, "account pzs0002 is not one of the LDAP groups of alice", "pod-identity/account-is-users-group"},
	{"account that is a substring of the user's", func(p *corev1.Pod) { p.Labels["account"] = "pzs000" }, "account pzs000 is not one of the LDAP groups of alice", "pod-identity/account-is-users-group"},
	{"no account", func(p *corev1.Pod) { delete(p.Labels, "account") }, "the label 'account' (the project account the pod charges) is required", "pod-identity/account-required"},
	{"no lifetime", func(p *corev1.Pod) { delete(p.Annotations, "pod.kubernetes.io/lifetime") }, "the walltime annotation pod.kubernetes.io/lifetime is required", "pod-security/lifetime-required"},
	{"lifetime over the max", func(p *corev1.Pod) { p.Annotations["pod.kubernetes.io/lifetime"] = "48h" }, "pod.kubernetes.io/lifetime 48h is over the maximum of 24h", "pod-security/lifetime-maximum"},
	{"lifetime in days", func(p *corev1.Pod) { p.Annotations["pod.kubernetes.io/lifetime"] = "1d" }, "pod.kubernetes.io/lifetime 1d is not a positive duration", "pod-security/lifetime-valid"},
	{"no limits", func(p *corev1.Pod) { p.Spec.Containers[0].Resources.Limits = nil }, "every container needs CPU and memory requests and limits; missing in: main", "pod-security/resources-required"},
	{"no memory limit", func(p *corev1.Pod) { delete(p.Spec.InitContainers[0].Resources.Limits, corev1.ResourceMemory) }, "missing in: init", "pod-security/resources-required"},
	// Just over the per-container caps, under the per-pod totals (16 CPUs,
	// 64Gi), so that only the per-container rule denies.
	{"CPU limit over the max", func(p *corev1.Pod) {
		p.Spec.Containers[0].Resources.Limits[corev1.ResourceCPU] = resource.MustParse("9")
	}, "CPU requests and limits may be at most 8 and memory at most 32Gi per container; over in: main", "pod-security/resources-maximum"},
	{"memory over the max", func(p *corev1.Pod) {
		p.Spec.Containers[0].Resources.Limits[corev1.ResourceMemory] = resource.MustParse("34Gi")
		p.Spec.Containers[0].Resources.Requests[corev1.ResourceMemory] = resource.MustParse("33Gi")
	}, "over in: main", "pod-security/resources-maximum"},
	{"untrusted registry", func(p *corev1.Pod) { p.Spec.Containers[0].Image = "evil.example.com/miner:1" }, "images may only come from registry.example.org, docker.io/library; not allowed: main", "pod-security/registries"},
	{"registry name as a prefix of another host", func(p *corev1.Pod) { p.Spec.InitContainers[0].Image = "registry.example.org.evil.com/x:1" }, "not allowed: init", "pod-security/registries"},
	{"unqualified image", func(p *corev1.Pod) { p.Spec.Containers[0].Image = "busybox" }, "not allowed: main", "pod-security/registries"},
}

// TestVAPAttackCatalogue proves, on the real API server, that each attack is
// rejected with a clear message and a well-formed pod of the user is admitted.
func TestVAPAttackCatalogue(t *testing.T) {
	installUmbrella(t)
	alice := newUser(t, "alice", "10001", "10001", []string{"10001", "20001"}, []string{"alice", "pzs0001"})
	ctx := context.Background()
	if _, err := alice.Client.CoreV1().Pods(alice.Namespace).Create(ctx, goodPod(alice), metav1.CreateOptions{}); err != nil {
		t.Fatalf("create a well-formed pod as alice: %v", err)
	}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			p := goodPod(alice)
			a.mutate(p)
			// The messages name the namespace owner, alice-<n>.
			want := strings.ReplaceAll(a.want, "alice", alice.Name)
			_, err := alice.Client.CoreV1().Pods(alice.Namespace).Create(ctx, p, metav1.CreateOptions{})
			if !isDenied(err, want) {
				t.Errorf("create pod (%s) as alice: err = %v, want a denial containing %q", a.name, err, want)
			}
		})
	}
}

// TestVAPUserMissing proves a user with no identity (not in LDAP, or not yet
// synced) is denied with a message that says so.
func TestVAPUserMissing(t *testing.T) {
	installUmbrella(t)
	nobody := newUser(t, "dave", "", "", []string{"10009"}, []string{"dave"})
	p := goodPod(&user{Name: "dave", UID: "10009", GID: "10009", GIDs: []string{"10009"}, Groups: []string{"dave"}})
	p.Spec.SecurityContext.SupplementalGroups = nil
	p.Spec.Volumes, p.Spec.Containers[0].VolumeMounts = nil, nil
	_, err := nobody.Client.CoreV1().Pods(nobody.Namespace).Create(context.Background(), p, metav1.CreateOptions{})
	want := "namespace " + nobody.Namespace + " has no LDAP identity (kubehpc.io/uid annotation missing or invalid): the user is not in LDAP, or ldap-configmap has not synced them yet"
	if !isDenied(err, want) {
		t.Errorf("create pod in a namespace without identity: err = %v, want %q", err, want)
	}
}

// TestVAPScope proves the pod rules apply by namespace name: not to an
// excluded namespace, not to the release namespace, but to a user namespace
// without the open-ondemand label (issue 11: a label can be removed).
func TestVAPScope(t *testing.T) {
	installUmbrella(t)
	ctx := context.Background()
	bad := goodPod(&user{Name: "x", UID: "0", GID: "0", GIDs: []string{"0"}, Groups: []string{"x"}})
	bad.Spec.HostNetwork = true
	bad.Spec.SecurityContext.RunAsNonRoot = nil
	// An excluded namespace lies outside the prefix (the chart refuses one
	// inside it, TestSchemaViolations); it keeps the open-ondemand label.
	excluded := "operator-system"
	ensureNamespace(t, excluded)
	if _, err := env.Kube.Client.CoreV1().Namespaces().Patch(ctx, excluded, types.MergePatchType,
		[]byte(`{"metadata":{"labels":{"app.kubernetes.io/name":"open-ondemand"}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{excluded, releaseNamespace} {
		if _, err := env.Kube.Client.CoreV1().Pods(ns).Create(ctx, bad, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
			t.Errorf("create a host-network root pod in %s (outside the policies' scope): %v", ns, err)
		}
	}
	unlabelled := "user-unlabelled-" + strconv.FormatInt(seq.Add(1), 10)
	createUserNamespace(t, unlabelled, nil, nil)
	_, err := env.Kube.Client.CoreV1().Pods(unlabelled).Create(ctx, bad, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	// The pod breaks several rules; which policy reports first varies.
	if !isDenied(err, "ValidatingAdmissionPolicy 'kubehpc-pod-") {
		t.Errorf("create a host-network root pod in %s (a user namespace without the label): err = %v, want a denial by the pod policies", unlabelled, err)
	}
}

// TestVAPLabelRemoved proves a user namespace whose open-ondemand label is
// removed (as a tool's service account could, issue 11 hole 6) still gets
// every rule: the whole catalogue is denied there, the well-formed pod
// admitted.
func TestVAPLabelRemoved(t *testing.T) {
	installUmbrella(t)
	ctx := context.Background()
	alice := newUser(t, "unlabel", "10001", "10001", []string{"10001", "20001"}, []string{"unlabel", "pzs0001"})
	patch := []byte(`{"metadata":{"labels":{"app.kubernetes.io/name":null}}}`)
	if _, err := env.Kube.Client.CoreV1().Namespaces().Patch(ctx, alice.Namespace, types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatalf("remove the label of %s: %v", alice.Namespace, err)
	}
	dry := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	if _, err := alice.Client.CoreV1().Pods(alice.Namespace).Create(ctx, goodPod(alice), dry); err != nil {
		t.Fatalf("create a well-formed pod: %v", err)
	}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			t.Parallel()
			p := goodPod(alice)
			a.mutate(p)
			want := strings.ReplaceAll(a.want, "alice", alice.Name)
			if _, err := alice.Client.CoreV1().Pods(alice.Namespace).Create(ctx, p, dry); !isDenied(err, want) {
				t.Errorf("create pod (%s) in a namespace without the label: err = %v, want a denial containing %q", a.name, err, want)
			}
		})
	}
}

// TestWalltimePatternShared proves both engines' policies use
// pkg/walltime.Pattern, the reaper's grammar, verbatim.
func TestWalltimePatternShared(t *testing.T) {
	want := strings.ReplaceAll(walltime.Pattern, `\`, `\\`)
	for _, engine := range []string{"vap", "kyverno"} {
		out, err := helm(t, "template", "kubehpc", subchart(t, "policies"), "--set", "engine="+engine)
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(out, want); n < 2 {
			t.Errorf("engine %s: the policies hold pkg/walltime.Pattern %d times, want at least 2 (valid, maximum)", engine, n)
		}
	}
}

// TestVAPLifetimeTable proves with the table shared with pkg/walltime (and
// job-pod-reaper) that the policy accepts exactly the walltimes the reaper
// parses, up to the maximum (24h).
func TestVAPLifetimeTable(t *testing.T) {
	installUmbrella(t)
	alice := newUser(t, "walltime", "10001", "10001", []string{"10001", "20001"}, []string{"walltime", "pzs0001"})
	rows := lifetimeRows(t)
	for _, row := range rows {
		value, want := row.Value, row.Accepted && row.Duration <= 24*time.Hour
		t.Run(strconv.Quote(value), func(t *testing.T) {
			p := goodPod(alice)
			p.Annotations["pod.kubernetes.io/lifetime"] = value
			_, err := alice.Client.CoreV1().Pods(alice.Namespace).Create(context.Background(), p, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			if want && err != nil {
				t.Errorf("lifetime %q (accepted by pkg/walltime, under 24h): denied: %v", value, err)
			}
			if !want && !isDenied(err, "pod.kubernetes.io/lifetime") {
				t.Errorf("lifetime %q: err = %v, want a walltime denial", value, err)
			}
		})
	}
}

// lifetimeRows reads the walltime table shared with pkg/walltime and
// job-pod-reaper.
func lifetimeRows(t *testing.T) []walltime.Case {
	t.Helper()
	rows, err := walltime.Table()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) < 20 {
		t.Fatalf("read %d rows of lifetimes.txt, want at least 20", len(rows))
	}
	return rows
}

// TestVAPImmutableMetadata proves rule 8: on UPDATE a pod's account label and
// walltime annotation cannot change (not even to another of the user's
// accounts, nor by an admin), while other metadata can.
func TestVAPImmutableMetadata(t *testing.T) {
	installUmbrella(t)
	ctx := context.Background()
	u := newUser(t, "erin", "10005", "10005", []string{"10005", "20001", "20002"}, []string{"erin", "pzs0001", "pzs0002"})
	pod, err := u.Client.CoreV1().Pods(u.Namespace).Create(ctx, goodPod(u), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create a well-formed pod: %v", err)
	}
	patches := []struct {
		name, patch, want string
		asAdmin           bool
	}{
		{"relabel to another of the user's accounts", `{"metadata":{"labels":{"account":"pzs0001"}}}`, "the label account of a pod cannot change after creation (it was pzs0002)", false},
		// Removing the account also breaks rule 3; either denial may be the
		// one reported.
		{"remove the account", `{"metadata":{"labels":{"account":null}}}`, "account", false},
		{"extend the walltime", `{"metadata":{"annotations":{"pod.kubernetes.io/lifetime":"02h00m00s"}}}`, "pod.kubernetes.io/lifetime of a pod cannot change after creation (it was 01h00m00s)", false},
		{"shorten the walltime", `{"metadata":{"annotations":{"pod.kubernetes.io/lifetime":"30m"}}}`, "cannot change after creation", false},
		{"remove the walltime", `{"metadata":{"annotations":{"pod.kubernetes.io/lifetime":null}}}`, "cannot change after creation", false},
		{"relabel as the admin", `{"metadata":{"labels":{"account":"pzs0001"}}}`, "the label account of a pod cannot change", true},
	}
	for _, p := range patches {
		t.Run(p.name, func(t *testing.T) {
			c := u.Client
			if p.asAdmin {
				c = env.Kube.Client
			}
			_, err := c.CoreV1().Pods(u.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, []byte(p.patch), metav1.PatchOptions{})
			if !isDenied(err, p.want) {
				t.Errorf("patch %s: err = %v, want a denial containing %q", p.patch, err, p.want)
			}
		})
	}
	t.Run("other metadata may change", func(t *testing.T) {
		_, err := u.Client.CoreV1().Pods(u.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType,
			[]byte(`{"metadata":{"labels":{"note":"x"},"annotations":{"example.org/comment":"y"}}}`), metav1.PatchOptions{})
		if err != nil {
			t.Errorf("add a label and an annotation to a running pod: %v", err)
		}
	})
}

// TestVAPEphemeralContainers proves the policies also check the
// pods/ephemeralcontainers subresource (kubectl debug): a root debug
// container from an untrusted registry is denied, a well-formed one admitted.
func TestVAPEphemeralContainers(t *testing.T) {
	installUmbrella(t)
	ctx := context.Background()
	u := newUser(t, "heidi", "10008", "10008", []string{"10008", "20001"}, []string{"heidi", "pzs0001"})
	pod, err := u.Client.CoreV1().Pods(u.Namespace).Create(ctx, goodPod(u), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create a well-formed pod: %v", err)
	}
	debug := func(name, image string, uid int64) error {
		p, err := env.Kube.Client.CoreV1().Pods(u.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		p.Spec.EphemeralContainers = append(p.Spec.EphemeralContainers, corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
			Name: name, Image: image,
			SecurityContext: &corev1.SecurityContext{RunAsUser: &uid, AllowPrivilegeEscalation: ptr(false), Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
		}})
		_, err = env.Kube.Client.CoreV1().Pods(u.Namespace).UpdateEphemeralContainers(ctx, pod.Name, p, metav1.UpdateOptions{})
		return err
	}
	if err := debug("evil", "evil.example.com/debug:1", 10008); !isDenied(err, "images may only come from registry.example.org, docker.io/library; not allowed: evil") {
		t.Errorf("add an ephemeral container from an untrusted registry: err = %v, want a registry denial", err)
	}
	if err := debug("root", "registry.example.org/debug:1", 0); !isDenied(err, "wrong or unset in: root") {
		t.Errorf("add a root ephemeral container: err = %v, want a runAsUser denial", err)
	}
	if err := debug("ok", "registry.example.org/debug:1", 10008); err != nil {
		t.Errorf("add a well-formed ephemeral container: %v", err)
	}
}

// TestVAPTypeChecking proves the API server type-checks every pod and
// Service policy of the umbrella (identity from annotations) and of the
// catalogue's install (identity from ConfigMaps) without a warning: a
// misspelt field would otherwise make an expression fail at admission.
func TestVAPTypeChecking(t *testing.T) {
	installUmbrella(t)
	installCatalogue(t, "vap")
	ctx := context.Background()
	names := map[string]bool{}
	list, err := env.Kube.Client.AdmissionregistrationV1().ValidatingAdmissionPolicies().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range list.Items {
		if strings.HasPrefix(p.Name, "kubehpc-pod-") || strings.HasPrefix(p.Name, "cat-vap-") || p.Name == "kubehpc-service" {
			names[p.Name] = true
		}
	}
	for _, want := range []string{"kubehpc-pod-restricted", "kubehpc-pod-scheduling", "kubehpc-service", "kubehpc-pod-hostpath", "cat-vap-pod-hostpath", "cat-vap-pod-restricted"} {
		if !names[want] {
			t.Errorf("ValidatingAdmissionPolicy %s is not installed", want)
		}
	}
	for name := range names {
		var vap *admissionregistrationv1.ValidatingAdmissionPolicy
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			var err error
			vap, err = env.Kube.Client.AdmissionregistrationV1().ValidatingAdmissionPolicies().Get(ctx, name, metav1.GetOptions{})
			return err == nil && vap.Status.TypeChecking != nil, nil
		})
		if err != nil {
			t.Errorf("ValidatingAdmissionPolicy %s: no type-checking result: %v", name, err)
			continue
		}
		for _, w := range vap.Status.TypeChecking.ExpressionWarnings {
			t.Errorf("ValidatingAdmissionPolicy %s: type-checking warning at %s: %s", name, w.FieldRef, w.Warning)
		}
	}
}

// TestVAPUserPathsAnnotations proves {user} and {home} in hostPaths.allowed
// with identity from the namespace annotations (kubehpc.io/user,
// kubehpc.io/home): a second install with only the hostPath rule, over the
// umbrella's user namespaces, admits the user's own scratch and home and
// denies another user's and the scratch root.
func TestVAPUserPathsAnnotations(t *testing.T) {
	installUmbrella(t)
	ctx := context.Background()
	values := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(values, []byte("namePrefix: userpaths\nhostPaths:\n  allowed: [\"/fs/scratch/{user}\", \"{home}\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"install", "userpaths", subchart(t, "policies"), "--namespace", "userpaths", "--create-namespace", "--values", values}
	for _, r := range []string{"identity", "supplementalGroups", "account", "resources", "lifetime", "registries",
		"immutableMetadata", "namespaceIdentity", "confinement", "volumes", "scheduling", "podTotals", "services"} {
		args = append(args, "--set", "rules."+r+"=false")
	}
	if _, err := helm(t, args...); err != nil {
		t.Fatalf("install the hostPath rule with per-user entries: %v", err)
	}
	t.Cleanup(func() { _, _ = helm(t, "uninstall", "userpaths", "--namespace", "userpaths") })
	u := newUser(t, "frank", "10006", "10006", []string{"10006", "20001"}, []string{"frank", "pzs0001"})
	pod := func(path string) error {
		p := goodPod(u)
		p.Spec.Volumes = p.Spec.Volumes[:1]
		p.Spec.Containers[0].VolumeMounts = p.Spec.Containers[0].VolumeMounts[:1]
		p.Spec.Volumes[0].HostPath.Path = path
		_, err := u.Client.CoreV1().Pods(u.Namespace).Create(ctx, p, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err
	}
	const denied = "ValidatingAdmissionPolicy 'userpaths-pod-hostpath'"
	if err := pollDenied(ctx, func() error { return pod("/fs/scratch/bob") }, denied); err != nil {
		t.Fatalf("another user's scratch: %v", err)
	}
	// The umbrella's own rule allows /fs/scratch and below: only the
	// per-user entry denies these.
	for _, path := range []string{"/fs/scratch", "/fs/scratch/" + u.Name + "x"} {
		if err := pod(path); !isDenied(err, denied) {
			t.Errorf("hostPath %s: err = %v, want a denial by %s", path, err, denied)
		}
	}
	// The umbrella's rule (allowUserHome) denies these too, and the API
	// server may report either denial.
	for _, path := range []string{"/users/bob", "/users", "/users/" + u.Name + "x"} {
		if err := pod(path); !isDenied(err, "hostPath volumes are only allowed under") {
			t.Errorf("hostPath %s: err = %v, want a denial of the hostPath", path, err)
		}
	}
	for _, path := range []string{"/fs/scratch/" + u.Name, "/fs/scratch/" + u.Name + "/run1", "/users/" + u.Name, "/users/" + u.Name + "/project"} {
		if err := pod(path); err != nil {
			t.Errorf("hostPath %s (the user's own): %v", path, err)
		}
	}
}
