package mapsync

import (
	"context"
	"fmt"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kubehpc/kubehpc/pkg/testenv"
)

// TestAnnotationsWorkInCEL proves the annotation format is what a
// ValidatingAdmissionPolicy can test exactly with no JSON parsing: the real
// API server admits a pod whose UID and supplemental groups match its
// namespace's annotations, denies one with a group the user is not in (20002
// must not match 200021 or 120002), and denies every pod in a namespace
// whose user left LDAP.
func TestAnnotationsWorkInCEL(t *testing.T) {
	ctx := context.Background()
	c := testConfig(t, env.LDAP)
	c.Mappers = nil
	c.NamespaceAnnotations = true
	c.UserPrefix = "cel-"
	label := fmt.Sprintf("lcm-cel-%d", time.Now().UnixNano()%100000)
	for _, n := range []string{"cel-alice", "cel-gone"} {
		createNamespace(t, n, nil)
		ns, _ := env.Kube.Client.CoreV1().Namespaces().Get(ctx, n, metav1.GetOptions{})
		ns.Labels = map[string]string{label: "true"}
		if _, err := env.Kube.Client.CoreV1().Namespaces().Update(ctx, ns, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	newHarness(t, c).mustRun(t)

	const gids = "namespaceObject.metadata.annotations['kubehpc.io/gids']"
	policy := &admissionv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: label},
		Spec: admissionv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: ptr.To(admissionv1.Fail),
			MatchConstraints: &admissionv1.MatchResources{ResourceRules: []admissionv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionv1.RuleWithOperations{Operations: []admissionv1.OperationType{admissionv1.Create},
					Rule: admissionv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}}},
			}}},
			Validations: []admissionv1.Validation{
				{Expression: "has(namespaceObject.metadata.annotations) && 'kubehpc.io/uid' in namespaceObject.metadata.annotations", Message: "no identity"},
				{Expression: "object.spec.securityContext.runAsUser == int(namespaceObject.metadata.annotations['kubehpc.io/uid'])", Message: "wrong uid"},
				{Expression: "!has(object.spec.securityContext.supplementalGroups) || object.spec.securityContext.supplementalGroups.all(g, " + gids + ".contains(',' + string(g) + ','))", Message: "group not allowed"},
			},
		},
	}
	binding := &admissionv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: label},
		Spec: admissionv1.ValidatingAdmissionPolicyBindingSpec{PolicyName: label,
			ValidationActions: []admissionv1.ValidationAction{admissionv1.Deny},
			MatchResources:    &admissionv1.MatchResources{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{label: "true"}}}},
	}
	adm := env.Kube.Client.AdmissionregistrationV1()
	if _, err := adm.ValidatingAdmissionPolicies().Create(ctx, policy, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = adm.ValidatingAdmissionPolicies().Delete(ctx, label, metav1.DeleteOptions{}) })
	if _, err := adm.ValidatingAdmissionPolicyBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = adm.ValidatingAdmissionPolicyBindings().Delete(ctx, label, metav1.DeleteOptions{}) })

	seq := 0
	create := func(ns string, uid int64, groups ...int64) error {
		seq++
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p%d", seq)}, Spec: corev1.PodSpec{
			SecurityContext: &corev1.PodSecurityContext{RunAsUser: &uid, SupplementalGroups: groups},
			Containers:      []corev1.Container{{Name: "c", Image: "busybox"}},
		}}
		_, err := env.Kube.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
		return err
	}
	// The policy takes effect asynchronously: wait until a bad pod is denied.
	testenv.EventuallyWithin(t, 30*time.Second, "the policy to deny a pod", func() (bool, error) {
		err := create("cel-alice", 10001, 999)
		return apierrors.IsInvalid(err), err
	})
	tests := []struct {
		name   string
		ns     string
		uid    int64
		groups []int64
		allow  bool
	}{
		{"alice with her groups", "cel-alice", 10001, []int64{10001, 20001, 20100}, true},
		{"alice without supplemental groups", "cel-alice", 10001, nil, true},
		{"alice as another uid", "cel-alice", 10002, []int64{20001}, false},
		{"alice with carol's group", "cel-alice", 10001, []int64{20002}, false},
		{"alice with a group that only shares digits", "cel-alice", 10001, []int64{2000}, false},
		{"user not in LDAP", "cel-gone", 10001, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := create(tt.ns, tt.uid, tt.groups...)
			if tt.allow && err != nil {
				t.Errorf("create pod = %v, want admitted", err)
			}
			if !tt.allow && !apierrors.IsInvalid(err) {
				t.Errorf("create pod = %v, want denied by the policy", err)
			}
		})
	}
}
