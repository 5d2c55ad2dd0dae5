package story

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubehpc/kubehpc/pkg/identity"
	"github.com/kubehpc/kubehpc/pkg/testenv"
)

// userPod is a well-formed pod of alice (UID/GID 10001, groups alice,
// hpcusers (20100), pzs0001 (20001)): her identity, an account she belongs
// to, a walltime, requests and limits, an allowed image and hostPath, nothing
// privileged.
func userPod(name, job, lifetime string) *corev1.Pod {
	uid, gid := int64(10001), int64(10001)
	strict := corev1.SupplementalGroupsPolicyStrict
	res := corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("1Gi")},
		Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("1Gi")},
	}
	f := false
	t := true
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name,
			Labels: map[string]string{identity.AccountLabel: "pzs0001", identity.JobLabel: job,
				identity.ManagedByLabel: identity.OnDemandManagedBy},
			Annotations: map[string]string{identity.LifetimeAnnotation: lifetime},
		},
		Spec: corev1.PodSpec{
			SecurityContext: &corev1.PodSecurityContext{
				RunAsUser: &uid, RunAsGroup: &gid, FSGroup: &gid, RunAsNonRoot: &t,
				SupplementalGroups: []int64{20001}, SupplementalGroupsPolicy: &strict,
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{{
				Name: "jupyter", Image: "registry.example.org/hpc/jupyter:1", Resources: res,
				SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: &f, Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
				VolumeMounts:    []corev1.VolumeMount{{Name: "scratch", MountPath: "/fs/scratch"}},
			}},
			Volumes: []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/fs/scratch/alice"}}}},
		},
	}
}

// Admission creates pods as alice in her namespace: a correct one is
// admitted; one as another UID, one charging a foreign account, a privileged
// one and a hostPath one are rejected with the API server's message.
func (s *Story) Admission(ctx context.Context) error {
	alice, err := testenv.ClientFor(s.env.Kube.ConfigAs("alice"))
	if err != nil {
		return err
	}
	cases := []struct {
		name   string
		allow  bool
		mutate func(*corev1.Pod)
	}{
		{"well-formed pod of alice", true, func(*corev1.Pod) {}},
		{"runs as bob's UID 10002", false, func(p *corev1.Pod) { u := int64(10002); p.Spec.SecurityContext.RunAsUser = &u }},
		{"charges account pzs0002 (not hers)", false, func(p *corev1.Pod) { p.Labels[identity.AccountLabel] = "pzs0002" }},
		{"privileged container", false, func(p *corev1.Pod) {
			t := true
			p.Spec.Containers[0].SecurityContext.Privileged = &t
			p.Spec.Containers[0].SecurityContext.AllowPrivilegeEscalation = nil
		}},
		{"mounts hostPath /etc", false, func(p *corev1.Pod) { p.Spec.Volumes[0].HostPath.Path = "/etc" }},
	}
	// Enforcement begins a moment after the policies are created: wait until
	// the first bad pod is denied (bounded).
	probe := userPod("probe", "probe", "1h")
	cases[1].mutate(probe)
	if err := testenv.Poll(ctx, pollInterval, 30*time.Second, func() (bool, error) {
		_, err := alice.CoreV1().Pods("user-alice").Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return apierrors.IsInvalid(err) || apierrors.IsForbidden(err), nil
	}); err != nil {
		return fmt.Errorf("the admission policies never took effect: %w", err)
	}
	for i, c := range cases {
		p := userPod(fmt.Sprintf("pod-%d", i), "session-1", "1h")
		c.mutate(p)
		a := Attempt{Name: c.name, WantAllowed: c.allow, AsUser: "alice", NamespaceFor: "user-alice"}
		_, err := alice.CoreV1().Pods("user-alice").Create(ctx, p, metav1.CreateOptions{})
		a.Allowed = err == nil
		if err != nil {
			a.Message = err.Error()
		}
		s.Results.Admission = append(s.Results.Admission, a)
		switch {
		case a.Allowed && c.allow:
			s.p.OK("admitted: %s", c.name)
		case !a.Allowed && !c.allow:
			s.p.Denied("rejected: %s", c.name)
			s.p.Block(wrap(a.Message, 110))
		default:
			s.p.Fail("%s: allowed=%v, want %v: %s", c.name, a.Allowed, c.allow, a.Message)
			return fmt.Errorf("%w: pod %q allowed=%v, want %v: %s", errStep, c.name, a.Allowed, c.allow, a.Message)
		}
	}
	return nil
}

func wrap(s string, width int) string {
	var b strings.Builder
	line := 0
	for _, w := range strings.Fields(s) {
		if line > 0 && line+len(w)+1 > width {
			b.WriteString("\n")
			line = 0
		} else if line > 0 {
			b.WriteString(" ")
			line++
		}
		b.WriteString(w)
		line += len(w)
	}
	return b.String()
}
