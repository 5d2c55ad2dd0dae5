package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
)

// The job-pod-reaper guard's messages start with this.
const reaperGuard = "job-pod-reaper guard: "

// reaperObjects creates, as the admin, a pod, Service, ConfigMap and Secret
// of job "j1" (with the object labels the reaper selects) in ns, plus a
// Secret "other" without the job label, and returns the pod's name.
func reaperObjects(t *testing.T, ns string, pod *corev1.Pod) string {
	t.Helper()
	ctx := context.Background()
	core := env.Kube.Client.CoreV1()
	lbl := map[string]string{"job": "j1", "app.kubernetes.io/managed-by": "open-ondemand"}
	if pod == nil {
		pod = &corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: "job-"},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.example.org/app:1"}}}}
	}
	pod = pod.DeepCopy()
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	for k, v := range lbl {
		pod.Labels[k] = v
	}
	created, err := core.Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod in %s: %v", ns, err)
	}
	om := metav1.ObjectMeta{Name: "j1", Labels: lbl}
	if _, err := core.Services(ns).Create(ctx, &corev1.Service{ObjectMeta: om, Spec: corev1.ServiceSpec{
		ClusterIP: corev1.ClusterIPNone, Ports: []corev1.ServicePort{{Port: 80}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create service in %s: %v", ns, err)
	}
	if _, err := core.ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: om}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create configmap in %s: %v", ns, err)
	}
	if _, err := core.Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: om, StringData: map[string]string{"password": "s3cret"}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create secret in %s: %v", ns, err)
	}
	other := metav1.ObjectMeta{Name: "other", Labels: map[string]string{"app.kubernetes.io/managed-by": "open-ondemand"}}
	if _, err := core.Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: other, StringData: map[string]string{"token": "t"}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create secret other in %s: %v", ns, err)
	}
	t.Cleanup(func() {
		bg := context.Background()
		_ = core.Pods(ns).Delete(bg, created.Name, metav1.DeleteOptions{})
		_ = core.Services(ns).Delete(bg, "j1", metav1.DeleteOptions{})
		_ = core.ConfigMaps(ns).Delete(bg, "j1", metav1.DeleteOptions{})
		_ = core.Secrets(ns).Delete(bg, "j1", metav1.DeleteOptions{})
		_ = core.Secrets(ns).Delete(bg, "other", metav1.DeleteOptions{})
	})
	return created.Name
}

// deleteSecretsAs deletes the Secrets selected by selector in ns with one
// DELETE collection call, as the reaper does, and returns the names the
// answer holds (read as PartialObjectMetadataList) and its kind.
func deleteSecretsAs(c kubernetes.Interface, ns, selector string) (kind string, names []string, err error) {
	body, err := c.CoreV1().RESTClient().Delete().Namespace(ns).Resource("secrets").
		VersionedParams(&metav1.ListOptions{LabelSelector: selector}, scheme.ParameterCodec).
		SetHeader("Accept", "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1").
		Body(&metav1.DeleteOptions{}).Do(context.Background()).Raw()
	if err != nil {
		// The Status of an error is not a PartialObjectMetadataList: the
		// client cannot decode it; the body holds it.
		var st metav1.Status
		if json.Unmarshal(body, &st) == nil && st.Kind == "Status" {
			return "", nil, apierrors.FromObject(&st)
		}
		return "", nil, err
	}
	var l metav1.PartialObjectMetadataList
	if err := json.Unmarshal(body, &l); err != nil {
		return "", nil, fmt.Errorf("decode %s: %w", body, err)
	}
	for _, it := range l.Items {
		names = append(names, it.Name)
	}
	if strings.Contains(string(body), "s3cret") || strings.Contains(string(body), "czNjcmV0") {
		return l.Kind, names, fmt.Errorf("the answer holds the Secret's data: %s", body)
	}
	return l.Kind, names, nil
}

// waitForReaperGuard polls until the guard denies the reaper's dry-run
// delete of pod in a non-user namespace (a policy takes effect a moment
// after it is created).
func waitForReaperGuard(t *testing.T, c kubernetes.Interface, ns, pod string) {
	t.Helper()
	ctx := context.Background()
	if err := pollDenied(ctx, func() error {
		return c.CoreV1().Pods(ns).Delete(ctx, pod, metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}})
	}, reaperGuard); err != nil {
		t.Fatal(err)
	}
}

// TestGuardJobPodReaperCannotReadSecrets: the reaper's ServiceAccount, as
// the chart installs it, may not get, list or watch Secrets anywhere: not
// cluster-wide, not in kube-system or the release namespace, not in user
// namespaces. It holds only deletecollection on Secrets.
func TestGuardJobPodReaperCannotReadSecrets(t *testing.T) {
	installUmbrella(t)
	c := saClient(t, "job-pod-reaper")
	u := newUser(t, "gs", "10001", "10001", []string{"10001"}, []string{"gs"}).Namespace
	var table []access
	for _, ns := range []string{"", "kube-system", releaseNamespace, "default", u} {
		for _, v := range []string{"get", "list", "watch"} {
			table = append(table, access{verb: v, resource: "secrets", namespace: ns, allowed: false})
		}
		table = append(table, access{verb: "get", resource: "secrets", namespace: ns, name: "x", allowed: false},
			access{verb: "delete", resource: "secrets", namespace: ns, name: "x", allowed: false})
	}
	table = append(table, access{verb: "deletecollection", resource: "secrets", namespace: u, allowed: true})
	checkAccess(t, c, "job-pod-reaper", table)
	ctx := context.Background()
	for _, ns := range []string{"", "kube-system", releaseNamespace, u} {
		if _, err := c.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("list secrets in %q as job-pod-reaper: err = %v, want Forbidden", ns, err)
		}
		if _, err := c.CoreV1().Secrets(ns).Get(ctx, "x", metav1.GetOptions{}); ns != "" && !apierrors.IsForbidden(err) {
			t.Errorf("get secret x in %q as job-pod-reaper: err = %v, want Forbidden", ns, err)
		}
	}
	// There is no DELETE collection across namespaces: the API server
	// serves only list and watch there.
	err := c.CoreV1().RESTClient().Delete().Resource("secrets").Body(&metav1.DeleteOptions{}).Do(ctx).Error()
	if err == nil {
		t.Errorf("DELETE /api/v1/secrets as job-pod-reaper succeeded, want an error")
	}
}

// TestGuardJobPodReaperConfinesDeletes: as the reaper's ServiceAccount,
// deleting a pod, Service, ConfigMap or Secret in kube-system or in another
// non-user namespace is denied by the guard (RBAC alone would allow it),
// and a DELETE collection of Secrets there deletes nothing: the API server
// admits each item on its own. In a user namespace the job's objects are
// reaped; the DELETE collection's answer names them without their data,
// and a Secret without the job label is not deleted.
func TestGuardJobPodReaperConfinesDeletes(t *testing.T) {
	installUmbrella(t)
	c := saClient(t, "job-pod-reaper")
	ctx := context.Background()
	other := fmt.Sprintf("guard-other-%d", seq.Add(1))
	if _, err := env.Kube.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: other}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = env.Kube.Client.CoreV1().Namespaces().Delete(context.Background(), other, metav1.DeleteOptions{})
	})
	// A namespace whose name merely contains the prefix is no user namespace.
	notUser := fmt.Sprintf("x-user-%d", seq.Add(1))
	if _, err := env.Kube.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: notUser}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = env.Kube.Client.CoreV1().Namespaces().Delete(context.Background(), notUser, metav1.DeleteOptions{})
	})

	for i, ns := range []string{"kube-system", releaseNamespace, other, notUser} {
		t.Run(ns, func(t *testing.T) {
			pod := reaperObjects(t, ns, nil)
			if i == 0 {
				waitForReaperGuard(t, c, ns, pod)
			}
			core := c.CoreV1()
			for what, del := range map[string]func() error{
				"pod " + pod:   func() error { return core.Pods(ns).Delete(ctx, pod, metav1.DeleteOptions{}) },
				"service j1":   func() error { return core.Services(ns).Delete(ctx, "j1", metav1.DeleteOptions{}) },
				"configmap j1": func() error { return core.ConfigMaps(ns).Delete(ctx, "j1", metav1.DeleteOptions{}) },
			} {
				if err := del(); !isDenied(err, reaperGuard+"may delete only in namespaces named user-*") {
					t.Errorf("delete %s in %s as job-pod-reaper: err = %v, want denied by the guard", what, ns, err)
				}
			}
			for _, sel := range []string{"job=j1", "app.kubernetes.io/managed-by=open-ondemand"} {
				if _, _, err := deleteSecretsAs(c, ns, sel); !isDenied(err, reaperGuard) {
					t.Errorf("DELETE collection of secrets %q in %s as job-pod-reaper: err = %v, want denied by the guard", sel, ns, err)
				}
			}
			admin := env.Kube.Client.CoreV1()
			if _, err := admin.Pods(ns).Get(ctx, pod, metav1.GetOptions{}); err != nil {
				t.Errorf("pod %s/%s after the denied delete: %v", ns, pod, err)
			}
			for _, name := range []string{"j1", "other"} {
				if _, err := admin.Secrets(ns).Get(ctx, name, metav1.GetOptions{}); err != nil {
					t.Errorf("secret %s/%s after the denied DELETE collection: %v", ns, name, err)
				}
			}
			if _, err := admin.ConfigMaps(ns).Get(ctx, "j1", metav1.GetOptions{}); err != nil {
				t.Errorf("configmap %s/j1 after the denied delete: %v", ns, err)
			}
		})
	}

	t.Run("user namespace", func(t *testing.T) {
		u := newUser(t, "gd", "10001", "10001", []string{"10001"}, []string{"gd"})
		ns := u.Namespace
		pod := reaperObjects(t, ns, goodPod(u))
		core := c.CoreV1()
		// A Secret without the job label is not the reaper's to delete,
		// even when a DELETE collection's selector takes it in.
		if _, _, err := deleteSecretsAs(c, ns, "!job,app.kubernetes.io/managed-by=open-ondemand"); !isDenied(err, reaperGuard+"may delete secrets only when they carry the job label job") {
			t.Errorf("DELETE collection of unlabelled secrets in %s: err = %v, want denied by the guard", ns, err)
		}
		if err := core.Pods(ns).Delete(ctx, pod, metav1.DeleteOptions{}); err != nil {
			t.Errorf("delete pod %s/%s as job-pod-reaper: %v", ns, pod, err)
		}
		if err := core.Services(ns).Delete(ctx, "j1", metav1.DeleteOptions{}); err != nil {
			t.Errorf("delete service %s/j1 as job-pod-reaper: %v", ns, err)
		}
		if err := core.ConfigMaps(ns).Delete(ctx, "j1", metav1.DeleteOptions{}); err != nil {
			t.Errorf("delete configmap %s/j1 as job-pod-reaper: %v", ns, err)
		}
		kind, names, err := deleteSecretsAs(c, ns, "app.kubernetes.io/managed-by=open-ondemand,job=j1")
		if err != nil || kind != "PartialObjectMetadataList" || len(names) != 1 || names[0] != "j1" {
			t.Errorf("DELETE collection of job j1's secrets in %s = %q %v, %v; want a PartialObjectMetadataList naming j1", ns, kind, names, err)
		}
		admin := env.Kube.Client.CoreV1()
		if _, err := admin.Secrets(ns).Get(ctx, "j1", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("secret %s/j1 after the reaper's DELETE collection: err = %v, want NotFound", ns, err)
		}
		if _, err := admin.Secrets(ns).Get(ctx, "other", metav1.GetOptions{}); err != nil {
			t.Errorf("secret %s/other (no job label): %v, want kept", ns, err)
		}
		// The namespace itself is not the reaper's to delete.
		if err := c.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("delete namespace %s as job-pod-reaper: err = %v, want Forbidden", ns, err)
		}
	})
}

// TestGuardJobPodReaperDeniesDryRunSecretDelete: a dry-run DELETE
// collection of a job's Secrets, answered as plain JSON, would hand the
// reaper's token every Secret in full without deleting it. The guard denies
// it; the answer holds no data and the Secret is still there.
func TestGuardJobPodReaperDeniesDryRunSecretDelete(t *testing.T) {
	installUmbrella(t)
	c := saClient(t, "job-pod-reaper")
	ctx := context.Background()
	u := newUser(t, "gdry", "10001", "10001", []string{"10001"}, []string{"gdry"})
	ns := u.Namespace
	reaperObjects(t, ns, goodPod(u))
	for _, accept := range []string{"application/json", "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"} {
		body, err := c.CoreV1().RESTClient().Delete().Namespace(ns).Resource("secrets").
			VersionedParams(&metav1.ListOptions{LabelSelector: "app.kubernetes.io/managed-by=open-ondemand,job=j1"}, scheme.ParameterCodec).
			SetHeader("Accept", accept).
			Body(&metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}}).Do(ctx).Raw()
		if err != nil {
			var st metav1.Status
			if json.Unmarshal(body, &st) == nil && st.Kind == "Status" {
				err = apierrors.FromObject(&st)
			}
		}
		if !isDenied(err, reaperGuard+"may not dry-run a delete of secrets") {
			t.Errorf("dry-run DELETE collection of job j1's secrets (Accept %s) as job-pod-reaper: err = %v, want denied by the guard", accept, err)
		}
		if strings.Contains(string(body), "s3cret") || strings.Contains(string(body), "czNjcmV0") {
			t.Errorf("dry-run DELETE collection (Accept %s) answered with the Secret's data: %s", accept, body)
		}
	}
	if _, err := env.Kube.Client.CoreV1().Secrets(ns).Get(ctx, "j1", metav1.GetOptions{}); err != nil {
		t.Errorf("secret %s/j1 after the denied dry run: %v, want kept", ns, err)
	}
}

// TestGuardJobPodReaperLeases: a stolen token may not take the leader
// Lease for ever with a huge leaseDurationSeconds, by create or by update,
// nor write another Lease; the leader election's own durations (15 s)
// pass.
func TestGuardJobPodReaperLeases(t *testing.T) {
	installUmbrella(t)
	// A token bound to the pod "thief" (the guard lets it hold the Lease
	// only as that pod: TestRedTeamLeases).
	c := podBoundClient(t, "job-pod-reaper", "thief")
	admin := env.Kube.Client
	ctx := context.Background()
	leases := c.CoordinationV1().Leases(releaseNamespace)
	newLease := func(name string, secs int32) *coordinationv1.Lease {
		return &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr("thief"), LeaseDurationSeconds: ptr(secs)}}
	}
	// Created under its own name (admission runs before the store answers
	// that it exists) or under any other.
	name := "job-pod-reaper"
	if err := pollDenied(ctx, func() error {
		_, err := leases.Create(ctx, newLease(name, 2147483647), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err
	}, reaperGuard+"a lease's leaseDurationSeconds must be set and at most 60"); err != nil {
		t.Errorf("create a Lease held for 2147483647 s as job-pod-reaper: %v", err)
	}
	if _, err := leases.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); !isDenied(err, reaperGuard) {
		t.Errorf("create a Lease without leaseDurationSeconds as job-pod-reaper: err = %v, want denied by the guard", err)
	}
	if _, err := leases.Create(ctx, newLease(name, 61), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); !isDenied(err, reaperGuard) {
		t.Errorf("create a Lease held for 61 s as job-pod-reaper: err = %v, want denied by the guard", err)
	}
	if _, err := leases.Create(ctx, newLease(name, 15), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Errorf("create a Lease held for 15 s as job-pod-reaper: %v", err)
	}
	other := fmt.Sprintf("guard-lease-%d", seq.Add(1))
	if _, err := leases.Create(ctx, newLease(other, 15), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); !isDenied(err, reaperGuard+"may write only its own Lease") {
		t.Errorf("create Lease %s held for 15 s as job-pod-reaper: err = %v, want denied by the guard", other, err)
	}
	// Its own Lease (RBAC lets it get and update only that one): created by
	// the admin when no replica runs (no kubelet here).
	own := "job-pod-reaper"
	if _, err := admin.CoordinationV1().Leases(releaseNamespace).Create(ctx, newLease(own, 15), metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		secs  int32
		allow bool
	}{{2147483647, false}, {61, false}, {60, true}, {15, true}} {
		l, err := leases.Get(ctx, own, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds = ptr("thief"), ptr(tc.secs)
		_, err = leases.Update(ctx, l, metav1.UpdateOptions{DryRun: []string{metav1.DryRunAll}})
		if tc.allow && err != nil {
			t.Errorf("update Lease %s to %d s as job-pod-reaper: %v", own, tc.secs, err)
		}
		if !tc.allow && !isDenied(err, reaperGuard+"a lease's leaseDurationSeconds must be set and at most 60") {
			t.Errorf("update Lease %s to %d s as job-pod-reaper: err = %v, want denied by the guard", own, tc.secs, err)
		}
	}
}

// TestGuardJobPodReaperEvents: the reaper records Events on pods in user
// namespaces and on its own pod in the release namespace; a stolen token
// may not forge Events (core or events.k8s.io) anywhere else, nor patch
// an existing Event there, nor pass an Event off as another component's.
func TestGuardJobPodReaperEvents(t *testing.T) {
	installUmbrella(t)
	c := saClient(t, "job-pod-reaper")
	admin := env.Kube.Client
	ctx := context.Background()
	u := newUser(t, "gev", "10001", "10001", []string{"10001"}, []string{"gev"})
	other := fmt.Sprintf("guard-ev-%d", seq.Add(1))
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: other}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.CoreV1().Namespaces().Delete(context.Background(), other, metav1.DeleteOptions{}) })
	event := func(ns string) *corev1.Event {
		return &corev1.Event{ObjectMeta: metav1.ObjectMeta{GenerateName: "guard-"},
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: ns, Name: "etcd"},
			Reason:         "Killing", Message: "forged", Type: corev1.EventTypeNormal, Source: corev1.EventSource{Component: "job-pod-reaper"}}
	}
	create := func(ns string) error {
		_, err := c.CoreV1().Events(ns).Create(ctx, event(ns), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err
	}
	const want = reaperGuard + "may write events only in namespaces named user-*"
	if err := pollDenied(ctx, func() error { return create("kube-system") }, want); err != nil {
		t.Errorf("create an Event in kube-system as job-pod-reaper: %v", err)
	}
	for _, ns := range []string{"default", other} {
		if err := create(ns); !isDenied(err, want) {
			t.Errorf("create an Event in %s as job-pod-reaper: err = %v, want denied by the guard", ns, err)
		}
	}
	if _, err := c.EventsV1().Events("kube-system").Create(ctx, &eventsv1.Event{ObjectMeta: metav1.ObjectMeta{GenerateName: "guard-"}, EventTime: metav1.NowMicro(),
		ReportingController: "kubelet", ReportingInstance: "node-1", Action: "Killing", Reason: "Killing", Type: corev1.EventTypeNormal,
		Regarding: corev1.ObjectReference{Kind: "Pod", Namespace: "kube-system", Name: "etcd"}, Note: "forged"}, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err == nil {
		t.Errorf("create an events.k8s.io Event in kube-system as job-pod-reaper succeeded, want denied")
	}
	// Patching (the recorder's way of counting a repeated Event) an Event
	// outside user namespaces.
	ev, err := admin.CoreV1().Events("kube-system").Create(ctx, event("kube-system"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = admin.CoreV1().Events("kube-system").Delete(context.Background(), ev.Name, metav1.DeleteOptions{})
	})
	if _, err := c.CoreV1().Events("kube-system").Patch(ctx, ev.Name, types.MergePatchType, []byte(`{"message":"forged again","count":5}`),
		metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}}); !isDenied(err, want) {
		t.Errorf("patch Event kube-system/%s as job-pod-reaper: err = %v, want denied by the guard", ev.Name, err)
	}
	for _, ns := range []string{u.Namespace, releaseNamespace} {
		if err := create(ns); err != nil {
			t.Errorf("create an Event in %s as job-pod-reaper: %v, want allowed", ns, err)
		}
	}
	// In a user namespace, an Event passed off as another component's.
	const forged = reaperGuard + "may write only core Events whose source.component and reportingComponent are job-pod-reaper"
	for what, mutate := range map[string]func(*corev1.Event){
		"source.component kubelet":   func(e *corev1.Event) { e.Source.Component = "kubelet" },
		"no source":                  func(e *corev1.Event) { e.Source = corev1.EventSource{} },
		"reportingComponent kubelet": func(e *corev1.Event) { e.ReportingController = "kubelet"; e.ReportingInstance = "node-1" },
	} {
		e := event(u.Namespace)
		mutate(e)
		if _, err := c.CoreV1().Events(u.Namespace).Create(ctx, e, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); !isDenied(err, forged) {
			t.Errorf("create an Event with %s in %s as job-pod-reaper: err = %v, want denied by the guard", what, u.Namespace, err)
		}
	}
	// As the reaper's recorders write them.
	e := event(u.Namespace)
	e.ReportingController = "job-pod-reaper"
	if _, err := c.CoreV1().Events(u.Namespace).Create(ctx, e, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Errorf("create an Event as the reaper's recorder writes it in %s: %v, want allowed", u.Namespace, err)
	}
}
