package tests

import (
	"context"
	"fmt"
	"strings"
	"testing"

	authnv1 "k8s.io/api/authentication/v1"
	authv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
)

// The red team's attacks that the chart as installed refuses: a hostile
// portal user going around the pod policies through subresources, patch
// types, server-side apply and edge-case values, and a thief of each tool's
// ServiceAccount token going around its guard through subresources, other
// patch types, metadata the guard might not compare, and dry-run. Each
// attempt must be denied, by RBAC ("cannot") or by the named policy.

const rbacDenied = "cannot"

// dryRun is what every attempt that would change state when wrongly
// admitted sends: admission runs for dry-run requests as for real ones.
var dryRun = []string{metav1.DryRunAll}

// TestRedTeamPortalUserRBAC: the portal user's ood-user binding grants
// pods, Services, ConfigMaps and Secrets only; no subresource (exec,
// attach, ephemeral containers, binding, status, eviction, token, proxy),
// no workload controller that would create pods on their behalf, no
// RoleBinding, NetworkPolicy, Endpoints, quota or Namespace. Asked of the
// API server's authorizer as the user.
func TestRedTeamPortalUserRBAC(t *testing.T) {
	installUmbrella(t)
	ctx := context.Background()
	u := newUser(t, "rtrbac", "20101", "20101", []string{"20101"}, []string{"rt"})
	type ask struct{ verb, group, resource, sub string }
	for _, a := range []ask{
		{"create", "", "pods", "exec"}, {"create", "", "pods", "attach"}, {"create", "", "pods", "portforward"},
		{"get", "", "pods", "proxy"}, {"create", "", "pods", "binding"}, {"create", "", "pods", "eviction"},
		{"update", "", "pods", "status"}, {"patch", "", "pods", "status"}, {"update", "", "pods", "ephemeralcontainers"},
		{"patch", "", "pods", "ephemeralcontainers"}, {"patch", "", "pods", "resize"}, {"get", "", "services", "proxy"},
		{"create", "", "serviceaccounts", "token"}, {"create", "", "serviceaccounts", ""},
		{"patch", "", "namespaces", ""}, {"update", "", "namespaces", "finalize"}, {"update", "", "namespaces", "status"},
		{"delete", "", "namespaces", ""},
		{"create", "rbac.authorization.k8s.io", "rolebindings", ""}, {"create", "rbac.authorization.k8s.io", "roles", ""},
		{"bind", "rbac.authorization.k8s.io", "clusterroles", ""}, {"escalate", "rbac.authorization.k8s.io", "roles", ""},
		{"create", "apps", "deployments", ""}, {"create", "apps", "replicasets", ""}, {"create", "apps", "statefulsets", ""},
		{"create", "apps", "daemonsets", ""}, {"create", "batch", "jobs", ""}, {"create", "batch", "cronjobs", ""},
		{"create", "", "replicationcontrollers", ""}, {"create", "", "podtemplates", ""},
		{"create", "resource.k8s.io", "resourceclaims", ""}, {"create", "resource.k8s.io", "resourceclaimtemplates", ""},
		{"create", "", "endpoints", ""}, {"create", "discovery.k8s.io", "endpointslices", ""},
		{"create", "networking.k8s.io", "ingresses", ""}, {"create", "networking.k8s.io", "networkpolicies", ""},
		{"delete", "networking.k8s.io", "networkpolicies", ""}, {"create", "", "persistentvolumeclaims", ""},
		{"create", "", "events", ""}, {"create", "events.k8s.io", "events", ""}, {"deletecollection", "", "pods", ""},
		{"update", "", "resourcequotas", ""}, {"delete", "", "limitranges", ""},
		{"create", "admissionregistration.k8s.io", "validatingadmissionpolicybindings", ""},
	} {
		review := &authv1.SelfSubjectAccessReview{Spec: authv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authv1.ResourceAttributes{
			Namespace: u.Namespace, Verb: a.verb, Group: a.group, Resource: a.resource, Subresource: a.sub}}}
		res, err := u.Client.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("SelfSubjectAccessReview %v: %v", a, err)
		}
		if res.Status.Allowed {
			t.Errorf("portal user may %s %s/%s/%s in %s, want denied", a.verb, a.group, a.resource, a.sub, u.Namespace)
		}
	}
}

// TestRedTeamPortalUser: a portal user's attempts on her own pods and
// Services, through every way of writing them.
func TestRedTeamPortalUser(t *testing.T) {
	installUmbrella(t)
	ctx := context.Background()
	u := newUser(t, "rtuser", "20201", "20201", []string{"20201", "20202"}, []string{"rtlab", "rtproj"})
	other := newUser(t, "rtother", "20301", "20301", []string{"20301"}, []string{"rtother"})
	pods := u.Client.CoreV1().Pods(u.Namespace)
	pod, err := pods.Create(ctx, goodPod(u), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create the well-formed pod: %v", err)
	}
	t.Cleanup(func() {
		_ = env.Kube.Client.CoreV1().Pods(u.Namespace).Delete(context.Background(), pod.Name, metav1.DeleteOptions{})
	})
	svc, err := u.Client.CoreV1().Services(u.Namespace).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "rt"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 8888}}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create a ClusterIP Service: %v", err)
	}
	patch := func(pt types.PatchType, body string, sub ...string) func() error {
		return func() error {
			_, err := pods.Patch(ctx, pod.Name, pt, []byte(body), metav1.PatchOptions{DryRun: dryRun, FieldManager: "mallory"}, sub...)
			return err
		}
	}
	apply := func(body string) func() error {
		return func() error {
			_, err := pods.Patch(ctx, pod.Name, types.ApplyPatchType, []byte(body), metav1.PatchOptions{DryRun: dryRun, FieldManager: "mallory", Force: ptr(true)})
			return err
		}
	}
	create := func(mutate func(p *corev1.Pod)) func() error {
		return func() error {
			p := goodPod(u)
			mutate(p)
			_, err := pods.Create(ctx, p, metav1.CreateOptions{DryRun: dryRun})
			return err
		}
	}
	lifetime := func(v string) func() error {
		return create(func(p *corev1.Pod) { p.Annotations["pod.kubernetes.io/lifetime"] = v })
	}
	svcPatch := func(pt types.PatchType, body string) func() error {
		return func() error {
			_, err := u.Client.CoreV1().Services(u.Namespace).Patch(ctx, svc.Name, pt, []byte(body), metav1.PatchOptions{DryRun: dryRun, FieldManager: "mallory", Force: forceFor(pt)})
			return err
		}
	}
	const (
		immutableLifetime = "the walltime annotation pod.kubernetes.io/lifetime of a pod cannot change"
		immutableAccount  = "the label account of a pod cannot change"
		badLifetime       = "is not a positive duration"
	)
	podApply := func(meta string) string {
		return fmt.Sprintf(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":%q,%s}}`, pod.Name, meta)
	}
	runAttempts(t, "portal user", []attempt{
		// The walltime and the account, removed or changed on the running pod.
		{name: "JSON patch removes the walltime", do: patch(types.JSONPatchType, `[{"op":"remove","path":"/metadata/annotations/pod.kubernetes.io~1lifetime"}]`), want: immutableLifetime},
		{name: "JSON patch replaces the walltime", do: patch(types.JSONPatchType, `[{"op":"replace","path":"/metadata/annotations/pod.kubernetes.io~1lifetime","value":"20h"}]`), want: immutableLifetime},
		{name: "JSON patch drops every annotation", do: patch(types.JSONPatchType, `[{"op":"remove","path":"/metadata/annotations"}]`), want: immutableLifetime},
		{name: "merge patch nulls the walltime", do: patch(types.MergePatchType, `{"metadata":{"annotations":{"pod.kubernetes.io/lifetime":null}}}`), want: immutableLifetime},
		{name: "server-side apply takes the walltime over", do: apply(podApply(`"annotations":{"pod.kubernetes.io/lifetime":"23h"}`)), want: immutableLifetime},
		{name: "strategic merge patch moves the account to a group she is in", do: patch(types.StrategicMergePatchType, `{"metadata":{"labels":{"account":"rtlab"}}}`), want: immutableAccount},
		{name: "server-side apply moves the account to another user's group", do: apply(podApply(`"labels":{"account":"rtother"}`)), want: "account"},
		{name: "JSON patch removes the account", do: patch(types.JSONPatchType, `[{"op":"remove","path":"/metadata/labels/account"}]`), want: "account"},
		// Spec changes after admission go through every pod rule again.
		{name: "image swapped to an unlisted registry", do: patch(types.JSONPatchType, `[{"op":"replace","path":"/spec/containers/0/image","value":"evil.example.org/miner:1"}]`), want: "images may only come from"},
		{name: "image swapped to a look-alike registry host", do: patch(types.JSONPatchType, `[{"op":"replace","path":"/spec/containers/0/image","value":"registry.example.org.evil.example/hpc/jupyter:1"}]`), want: "images may only come from"},
		{name: "toleration for every taint added", do: patch(types.JSONPatchType, `[{"op":"add","path":"/spec/tolerations/-","value":{"operator":"Exists"}}]`), want: "tolerations may only be the allowed ones"},
		// Subresources the user has no right to.
		{name: "ephemeral container as root", do: func() error {
			p := pod.DeepCopy()
			p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
				Name: "debug", Image: "registry.example.org/hpc/debug:1", SecurityContext: &corev1.SecurityContext{RunAsUser: ptr(int64(0))}}}}
			_, err := pods.UpdateEphemeralContainers(ctx, pod.Name, p, metav1.UpdateOptions{DryRun: dryRun})
			return err
		}, want: rbacDenied},
		{name: "pods/status rewrites the walltime", do: patch(types.MergePatchType, `{"metadata":{"annotations":{"pod.kubernetes.io/lifetime":"9999h"}}}`, "status"), want: rbacDenied},
		{name: "pods/binding to a chosen node", do: func() error {
			return pods.Bind(ctx, &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: pod.Name}, Target: corev1.ObjectReference{Kind: "Node", Name: "control-plane"}},
				metav1.CreateOptions{DryRun: dryRun})
		}, want: rbacDenied},
		{name: "pods/eviction of another user's pod", do: func() error {
			return u.Client.PolicyV1().Evictions(other.Namespace).Evict(ctx, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: other.Namespace},
				DeleteOptions: &metav1.DeleteOptions{DryRun: dryRun}})
		}, want: rbacDenied},
		{name: "token for the namespace's default ServiceAccount", do: func() error {
			_, err := u.Client.CoreV1().ServiceAccounts(u.Namespace).CreateToken(ctx, "default", &authnv1.TokenRequest{}, metav1.CreateOptions{DryRun: dryRun})
			return err
		}, want: rbacDenied},
		// Her Namespace, its identity and its RBAC.
		{name: "merge patch of her namespace's UID", do: func() error {
			_, err := u.Client.CoreV1().Namespaces().Patch(ctx, u.Namespace, types.MergePatchType, []byte(`{"metadata":{"annotations":{"kubehpc.io/uid":"20301"}}}`), metav1.PatchOptions{DryRun: dryRun})
			return err
		}, want: rbacDenied},
		{name: "RoleBinding granting another user her namespace", do: func() error {
			_, err := u.Client.RbacV1().RoleBindings(u.Namespace).Create(ctx, roleBinding("share", "ood-user", userSubject(other.Name)), metav1.CreateOptions{DryRun: dryRun})
			return err
		}, want: rbacDenied},
		{name: "Endpoints pointing a Service at the API server", do: func() error {
			//lint:ignore SA1019 the attack uses the deprecated Endpoints API on purpose: the API server still serves it.
			ep := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: "rt"}, Subsets: []corev1.EndpointSubset{{
				Addresses: []corev1.EndpointAddress{{IP: "10.96.0.1"}}, Ports: []corev1.EndpointPort{{Port: 443}}}}}
			_, err := u.Client.CoreV1().Endpoints(u.Namespace).Create(ctx, ep, metav1.CreateOptions{DryRun: dryRun})
			return err
		}, want: rbacDenied},
		{name: "pod in another user's namespace", do: func() error {
			_, err := u.Client.CoreV1().Pods(other.Namespace).Create(ctx, goodPod(other), metav1.CreateOptions{DryRun: dryRun})
			return err
		}, want: rbacDenied},
		// Services changed after creation.
		{name: "merge patch turns the Service into an ExternalName to the API server", do: svcPatch(types.MergePatchType,
			`{"spec":{"type":"ExternalName","externalName":"kubernetes.default.svc.cluster.local","clusterIP":"","clusterIPs":null}}`), want: "Services of type ExternalName are not allowed"},
		{name: "JSON patch adds externalIPs", do: svcPatch(types.JSONPatchType, `[{"op":"add","path":"/spec/externalIPs","value":["10.0.0.1"]}]`), want: "Services may not set externalIPs"},
		{name: "server-side apply makes the Service a LoadBalancer", do: svcPatch(types.ApplyPatchType,
			`{"apiVersion":"v1","kind":"Service","metadata":{"name":"rt"},"spec":{"type":"LoadBalancer","ports":[{"port":8888}]}}`), want: "Services of type LoadBalancer are not allowed"},
		// Edge-case values at creation.
		{name: "walltime with a trailing space", do: lifetime("1h "), want: badLifetime},
		{name: "walltime in capitals", do: lifetime("1H"), want: badLifetime},
		{name: "walltime with full-width digits", do: lifetime("\uff11h"), want: badLifetime},
		{name: "walltime negative", do: lifetime("-1h"), want: badLifetime},
		{name: "walltime zero", do: lifetime("0s"), want: badLifetime},
		{name: "walltime as a Go duration with a unit the reaper lacks", do: lifetime("1d"), want: badLifetime},
		{name: "walltime empty", do: lifetime(""), want: "pod.kubernetes.io/lifetime"},
		{name: "account a substring of her groups", do: create(func(p *corev1.Pod) { p.Labels["account"] = "rtla" }), want: "is not one of the LDAP groups"},
		{name: "account in another case", do: create(func(p *corev1.Pod) { p.Labels["account"] = "RTLAB" }), want: "is not one of the LDAP groups"},
		{name: "account of another user", do: create(func(p *corev1.Pod) { p.Labels["account"] = "rtother" }), want: "is not one of the LDAP groups"},
		{name: "supplemental group of another user", do: create(func(p *corev1.Pod) { p.Spec.SecurityContext.SupplementalGroups = []int64{20202, 20301} }), want: "supplementalGroups may only hold"},
		{name: "supplemental group that is a prefix of hers", do: create(func(p *corev1.Pod) { p.Spec.SecurityContext.SupplementalGroups = []int64{2020} }), want: "supplementalGroups may only hold"},
		{name: "runAsUser right in the pod, root in the init container", do: create(func(p *corev1.Pod) {
			p.Spec.InitContainers[0].SecurityContext.RunAsUser = ptr(int64(0))
		}), want: "runAsUser must be 20201"},
		{name: "runAsGroup root in a container", do: create(func(p *corev1.Pod) { p.Spec.Containers[0].SecurityContext.RunAsGroup = ptr(int64(0)) }), want: "runAsGroup must be 20201"},
		{name: "hostPath climbing out of the allow-list with ..", do: create(func(p *corev1.Pod) { p.Spec.Volumes[2].HostPath.Path = "/apps/../etc" }), want: "'..'"},
		{name: "hostPath another user's home", do: create(func(p *corev1.Pod) { p.Spec.Volumes[1].HostPath.Path = "/users/rtother" }), want: "hostPath volumes are only allowed under"},
		{name: "hostPath the parent of the homes", do: create(func(p *corev1.Pod) { p.Spec.Volumes[1].HostPath.Path = "/users" }), want: "hostPath volumes are only allowed under"},
		{name: "hostPath a home-prefixed sibling", do: create(func(p *corev1.Pod) { p.Spec.Volumes[1].HostPath.Path = "/users/rtuser2" }), want: "hostPath volumes are only allowed under"},
		{name: "flexVolume (an unlisted type)", do: create(func(p *corev1.Pod) {
			p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "flex", VolumeSource: corev1.VolumeSource{FlexVolume: &corev1.FlexVolumeSource{Driver: "example/x"}}})
		}), want: "volumes may only be of the types"},
		{name: "image volume from an unlisted registry", do: create(func(p *corev1.Pod) {
			p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "img", VolumeSource: corev1.VolumeSource{Image: &corev1.ImageVolumeSource{Reference: "evil.example.org/x:1"}}})
		}), want: "volumes may only be of the types"},
		{name: "hostUsers false with an unmasked /proc", do: create(func(p *corev1.Pod) {
			p.Spec.HostUsers = ptr(false)
			um := corev1.UnmaskedProcMount
			p.Spec.Containers[0].SecurityContext.ProcMount = &um
		}), want: "procMount must be Default"},
		{name: "shareProcessNamespace with a privileged init container", do: create(func(p *corev1.Pod) {
			p.Spec.ShareProcessNamespace = ptr(true)
			p.Spec.InitContainers[0].SecurityContext.Privileged = ptr(true)
			p.Spec.InitContainers[0].SecurityContext.AllowPrivilegeEscalation = nil
		}), want: "privileged containers are not allowed"},
		{name: "native sidecar (restartable init container) without resources", do: create(func(p *corev1.Pod) {
			always := corev1.ContainerRestartPolicyAlways
			p.Spec.InitContainers = append(p.Spec.InitContainers, corev1.Container{Name: "sidecar", Image: "registry.example.org/hpc/side:1", RestartPolicy: &always,
				SecurityContext: p.Spec.Containers[0].SecurityContext.DeepCopy()})
		}), want: "every container needs CPU and memory requests and limits"},
	})
}

// forceFor is Force for server-side apply, nil for the other patch types
// (which refuse it).
func forceFor(pt types.PatchType) *bool {
	if pt == types.ApplyPatchType {
		return ptr(true)
	}
	return nil
}

// TestRedTeamStolenTokens: each tool's ServiceAccount token, stolen, tries
// the ways around its guard that the guard tests do not: subresources,
// JSON patch and server-side apply instead of merge patch, owner
// references and finalizers (the garbage collector and the namespace
// controller act on them later), Events as a log-forging channel, and
// dry-run.
func TestRedTeamStolenTokens(t *testing.T) {
	installUmbrella(t)
	ctx := context.Background()
	admin := env.Kube.Client
	u := newUser(t, "rttok", "20401", "20401", []string{"20401"}, []string{"rttok"})
	prod := fmt.Sprintf("prod-rt-%d", seq.Add(1))
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: prod}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.CoreV1().Namespaces().Delete(context.Background(), prod, metav1.DeleteOptions{}) })
	// A Secret the reaper's DELETE collection would take in, outside user
	// namespaces (the guard admits each item on its own).
	if _, err := admin.CoreV1().Secrets(prod).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db",
		Labels: map[string]string{"job": "1", "app.kubernetes.io/managed-by": "open-ondemand"}}, StringData: map[string]string{"password": "s3cret"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	nsPatchAs := func(c kubernetes.Interface, name string, pt types.PatchType, body string, sub ...string) func() error {
		return func() error {
			_, err := c.CoreV1().Namespaces().Patch(ctx, name, pt, []byte(body), metav1.PatchOptions{DryRun: dryRun, FieldManager: "thief", Force: forceFor(pt)}, sub...)
			return err
		}
	}
	ownerRef := `{"metadata":{"ownerReferences":[{"apiVersion":"v1","kind":"Namespace","name":"ghost","uid":"6a4d4a4e-0000-4000-8000-000000000001"}]}}`
	finalizer := `{"metadata":{"finalizers":["example.org/never"]}}`
	event := func(c kubernetes.Interface, ns string) func() error {
		return func() error {
			_, err := c.EventsV1().Events(ns).Create(ctx, &eventsv1.Event{ObjectMeta: metav1.ObjectMeta{GenerateName: "forged-"}, EventTime: metav1.NowMicro(),
				ReportingController: "kubelet", ReportingInstance: "node-1", Action: "Killing", Reason: "Killing", Type: corev1.EventTypeNormal,
				Regarding: corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: "etcd"}, Note: "forged"}, metav1.CreateOptions{DryRun: dryRun})
			return err
		}
	}

	coreEvent := func(c kubernetes.Interface, ns string) func() error {
		return func() error {
			_, err := c.CoreV1().Events(ns).Create(ctx, &corev1.Event{ObjectMeta: metav1.ObjectMeta{GenerateName: "forged-"},
				InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: "etcd"}, Reason: "Killing", Message: "forged"}, metav1.CreateOptions{DryRun: dryRun})
			return err
		}
	}
	lease := func(c kubernetes.Interface) func() error {
		return func() error {
			_, err := c.CoordinationV1().Leases(releaseNamespace).Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "rt-lease"},
				Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr("thief"), LeaseDurationSeconds: ptr(int32(2147483647))}}, metav1.CreateOptions{DryRun: dryRun})
			return err
		}
	}

	t.Run("ldap-configmap", func(t *testing.T) {
		c := saClient(t, "ldap-configmap")
		runAttempts(t, "ldap-configmap", []attempt{
			{name: "namespaces/status rewrites the owner", do: nsPatchAs(c, u.Namespace, types.MergePatchType, `{"metadata":{"annotations":{"kubehpc.io/user":"mallory"}}}`, "status"), want: rbacDenied},
			{name: "namespaces/finalize", do: func() error {
				ns, err := admin.CoreV1().Namespaces().Get(ctx, u.Namespace, metav1.GetOptions{})
				if err != nil {
					return err
				}
				ns.Labels["app.kubernetes.io/managed-by"] = "x"
				_, err = c.CoreV1().Namespaces().Finalize(ctx, ns, metav1.UpdateOptions{DryRun: dryRun})
				return err
			}, want: rbacDenied},
			{name: "JSON patch removes the policies' label", do: nsPatchAs(c, u.Namespace, types.JSONPatchType, `[{"op":"remove","path":"/metadata/labels/app.kubernetes.io~1name"}]`), want: ldapGuard + "may not change the labels"},
			{name: "server-side apply rewrites the owner", do: nsPatchAs(c, u.Namespace, types.ApplyPatchType,
				fmt.Sprintf(`{"apiVersion":"v1","kind":"Namespace","metadata":{"name":%q,"annotations":{"kubehpc.io/user":"mallory"}}}`, u.Namespace)), want: "kubehpc.io/user"},
			{name: "owner reference for the garbage collector", do: nsPatchAs(c, u.Namespace, types.MergePatchType, ownerRef), want: ldapGuard + "may not change the spec, finalizers or owner references"},
			{name: "finalizer that blocks deletion", do: nsPatchAs(c, u.Namespace, types.MergePatchType, finalizer), want: ldapGuard + "may not change the spec, finalizers or owner references"},
			{name: "annotation outside its set (a Kyverno exception)", do: nsPatchAs(c, u.Namespace, types.MergePatchType, `{"metadata":{"annotations":{"policies.kyverno.io/skip":"true"}}}`), want: ldapGuard + "may change only the annotations"},
			{name: "identity annotations on a non-user namespace", do: nsPatchAs(c, prod, types.MergePatchType, `{"metadata":{"annotations":{"kubehpc.io/uid":"20401"}}}`), want: ldapGuard + "may annotate only namespaces named user-*"},
			{name: "a ConfigMap named like its map in a user namespace", do: func() error {
				_, err := c.CoreV1().ConfigMaps(u.Namespace).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "user-uid-map"}}, metav1.CreateOptions{DryRun: dryRun})
				return err
			}, want: rbacDenied},
			{name: "forged Event in kube-system", do: event(c, "kube-system"), want: rbacDenied},
			{name: "forged core Event in kube-system", do: coreEvent(c, "kube-system"), want: rbacDenied},
			{name: "a Lease that is not its own", do: lease(c), want: rbacDenied},
			{name: "dry-run delete of a user namespace", do: func() error {
				return c.CoreV1().Namespaces().Delete(ctx, u.Namespace, metav1.DeleteOptions{DryRun: dryRun})
			}, want: rbacDenied},
		})
	})

	t.Run("job-pod-reaper", func(t *testing.T) {
		c := saClient(t, "job-pod-reaper")
		runAttempts(t, "job-pod-reaper", []attempt{
			{name: "dry-run DELETE collection of job Secrets outside user namespaces", do: func() error {
				return c.CoreV1().RESTClient().Delete().Namespace(prod).Resource("secrets").
					VersionedParams(&metav1.ListOptions{LabelSelector: "job"}, scheme.ParameterCodec).
					Body(&metav1.DeleteOptions{DryRun: dryRun}).Do(ctx).Error()
			}, want: reaperGuard + "may delete only in namespaces named user-*"},
			{name: "evict a pod (the eviction API)", do: func() error {
				return c.PolicyV1().Evictions(u.Namespace).Evict(ctx, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: u.Namespace},
					DeleteOptions: &metav1.DeleteOptions{DryRun: dryRun}})
			}, want: rbacDenied},
			{name: "relabel a pod so the reaper's own selector picks another job", do: func() error {
				_, err := c.CoreV1().Pods(u.Namespace).Patch(ctx, "x", types.MergePatchType, []byte(`{"metadata":{"labels":{"job":"other"}}}`), metav1.PatchOptions{DryRun: dryRun})
				return err
			}, want: rbacDenied},
		})
	})

	t.Run("namespace-reaper", func(t *testing.T) {
		c := saClient(t, "namespace-reaper")
		const guard = "namespace-reaper guard: "
		runAttempts(t, "namespace-reaper", []attempt{
			{name: "JSON patch removes the policies' label", do: nsPatchAs(c, u.Namespace, types.JSONPatchType, `[{"op":"remove","path":"/metadata/labels/app.kubernetes.io~1name"}]`), want: guard + "namespace-reaper may change only"},
			{name: "server-side apply labels kube-system", do: nsPatchAs(c, "kube-system", types.ApplyPatchType,
				`{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"kube-system","labels":{"app.kubernetes.io/name":"open-ondemand"}}}`), want: guard},
			{name: "namespaces/finalize", do: func() error {
				ns, err := admin.CoreV1().Namespaces().Get(ctx, prod, metav1.GetOptions{})
				if err != nil {
					return err
				}
				ns.Spec.Finalizers = nil
				_, err = c.CoreV1().Namespaces().Finalize(ctx, ns, metav1.UpdateOptions{DryRun: dryRun})
				return err
			}, want: rbacDenied},
			{name: "dry-run delete of a non-user namespace", do: func() error {
				return c.CoreV1().Namespaces().Delete(ctx, prod, metav1.DeleteOptions{DryRun: dryRun})
			}, want: guard + "namespace-reaper deletes only user namespaces"},
			{name: "delete the user namespace's pods directly", do: func() error {
				return c.CoreV1().Pods(u.Namespace).DeleteCollection(ctx, metav1.DeleteOptions{DryRun: dryRun}, metav1.ListOptions{})
			}, want: rbacDenied},
			{name: "forged Event in kube-system", do: event(c, "kube-system"), want: rbacDenied},
			{name: "forged core Event in kube-system", do: coreEvent(c, "kube-system"), want: rbacDenied},
			{name: "a Lease in the release namespace", do: lease(c), want: rbacDenied},
		})
	})

	t.Run("namespace-bootstrap", func(t *testing.T) {
		c := saClient(t, "namespace-bootstrap")
		const guard = "namespace-bootstrap guard: "
		createRB := func(ns string, rb *rbacv1.RoleBinding) func() error {
			return func() error {
				_, err := c.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{DryRun: dryRun})
				return err
			}
		}
		runAttempts(t, "namespace-bootstrap", []attempt{
			{name: "bind ood-user to the owner spelt in capitals", do: createRB(u.Namespace, roleBinding("rt1", "ood-user", userSubject(strings.ToUpper(u.Name)))), want: guard + "RoleBinding rt1"},
			{name: "bind ood-user to the owner with a trailing space", do: createRB(u.Namespace, roleBinding("rt2", "ood-user", userSubject(u.Name+" "))), want: guard + "RoleBinding rt2"},
			{name: "bind ood-user to a Group named like the owner", do: createRB(u.Namespace, roleBinding("rt3", "ood-user", subject("Group", u.Name))), want: guard + "RoleBinding rt3"},
			{name: "bind ood-user to system:authenticated", do: createRB(u.Namespace, roleBinding("rt4", "ood-user", subject("Group", "system:authenticated"))), want: guard + "RoleBinding rt4"},
			{name: "bind ood-initializer to every ServiceAccount of the namespace", do: createRB(u.Namespace, roleBinding("rt6", "ood-initializer",
				subject("Group", "system:serviceaccounts:"+u.Namespace))), want: guard + "RoleBinding rt6"},
			{name: "token for the user namespace's default ServiceAccount", do: func() error {
				_, err := c.CoreV1().ServiceAccounts(u.Namespace).CreateToken(ctx, "default", &authnv1.TokenRequest{}, metav1.CreateOptions{DryRun: dryRun})
				return err
			}, want: rbacDenied},
			{name: "a namespace labelled Namespace-Bootstrap (another case)", do: func() error {
				_, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("user-rtcase-%d", seq.Add(1)),
					Labels: map[string]string{"app.kubernetes.io/managed-by": "Namespace-Bootstrap"}}}, metav1.CreateOptions{DryRun: dryRun})
				return err
			}, want: guard + "a Namespace namespace-bootstrap writes carries"},
			{name: "server-side apply adopts a non-user namespace", do: nsPatchAs(c, prod, types.ApplyPatchType,
				fmt.Sprintf(`{"apiVersion":"v1","kind":"Namespace","metadata":{"name":%q,"labels":{"app.kubernetes.io/managed-by":"namespace-bootstrap"}}}`, prod)), want: guard + "namespace-bootstrap writes only in user namespaces"},
			{name: "owner reference on a non-user namespace", do: nsPatchAs(c, prod, types.MergePatchType, ownerRef), want: guard + "namespace-bootstrap writes only in user namespaces"},
			{name: "NetworkPolicy in a non-user namespace", do: func() error {
				_, err := c.NetworkingV1().NetworkPolicies(prod).Create(ctx, allowAllPolicy(), metav1.CreateOptions{DryRun: dryRun})
				return err
			}, want: guard + "namespace-bootstrap writes only in user namespaces"},
			{name: "dry-run delete of a user's RoleBinding", do: func() error {
				return c.RbacV1().RoleBindings(u.Namespace).Delete(ctx, u.Name+"-ood-user", metav1.DeleteOptions{DryRun: dryRun})
			}, want: rbacDenied},
		})
	})
}

func subject(kind, name string) rbacv1.Subject {
	return rbacv1.Subject{APIGroup: "rbac.authorization.k8s.io", Kind: kind, Name: name}
}

// allowAllPolicy admits every ingress to every pod of its namespace.
func allowAllPolicy() *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "allow-all"},
		Spec: networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{}}}}
}
