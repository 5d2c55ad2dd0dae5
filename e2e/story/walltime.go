package story

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/kubehpc/kubehpc/pkg/identity"
	"github.com/kubehpc/kubehpc/pkg/testenv"
)

// Walltime starts job-pod-reaper (watch mode, as the chart's Deployment runs
// it) and submits, as alice, a job whose walltime is a few seconds, with a
// Service, ConfigMap and Secret of the same job; a second, long job must
// survive.
func (s *Story) Walltime(ctx context.Context) error {
	const ns, lifetime = "user-alice", 5 * time.Second
	alice, err := testenv.ClientFor(s.env.Kube.ConfigAs("alice"))
	if err != nil {
		return err
	}
	reaper, err := s.start(ctx, "job-pod-reaper")
	if err != nil {
		return err
	}
	labels := func(job string) map[string]string {
		return map[string]string{identity.JobLabel: job, identity.ManagedByLabel: identity.OnDemandManagedBy}
	}
	short, err := alice.CoreV1().Pods(ns).Create(ctx, userPod("short-job", "short-1", "5s"), metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create the short job as alice: %w", err)
	}
	long, err := alice.CoreV1().Pods(ns).Create(ctx, userPod("long-job", "long-1", "2h"), metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create the long job as alice: %w", err)
	}
	// The portal creates a job's companions; the admin client stands in for it.
	admin := s.env.Kube.Client.CoreV1()
	companions := []string{"service/short-1", "configmap/short-1", "secret/short-1"}
	meta := metav1.ObjectMeta{Name: "short-1", Labels: labels("short-1")}
	if _, err := admin.Services(ns).Create(ctx, &corev1.Service{ObjectMeta: meta, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 8888}}}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	if _, err := admin.ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: meta}, metav1.CreateOptions{}); err != nil {
		return err
	}
	if _, err := admin.Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: meta}, metav1.CreateOptions{}); err != nil {
		return err
	}
	if _, err := admin.ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "long-1", Labels: labels("long-1")}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	s.p.OK("alice submitted job short-1 (walltime %v, with a Service, ConfigMap and Secret) and job long-1 (walltime 2h)", lifetime)
	s.p.Progress("waiting for short-1's walltime to run out")
	w := &s.Results.Walltime
	w.Pod, w.Lifetime = short.Name, lifetime
	expiry := short.CreationTimestamp.Add(lifetime)
	err = testenv.Poll(ctx, pollInterval, lifetime+30*time.Second, func() (bool, error) {
		if reaper.exited() {
			return false, testenv.Final(fmt.Errorf("job-pod-reaper exited: %v\n%s", reaper.err, tailLines(reaper.out.String(), 15)))
		}
		_, err := admin.Pods(ns).Get(ctx, short.Name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		return fmt.Errorf("short-1 was not reaped: %w\n%s", err, tailLines(reaper.out.String(), 15))
	}
	w.Deleted = true
	w.DeletedAfter = time.Since(expiry)
	s.p.OK("pod %s deleted %v after its walltime ended (the API server's timestamps have 1 s resolution)", short.Name, w.DeletedAfter.Round(10*time.Millisecond))
	err = testenv.Poll(ctx, pollInterval, 10*time.Second, func() (bool, error) {
		w.CompanionsGone, w.CompanionsLeft = nil, nil
		checks := []error{}
		_, e1 := admin.Services(ns).Get(ctx, "short-1", metav1.GetOptions{})
		_, e2 := admin.ConfigMaps(ns).Get(ctx, "short-1", metav1.GetOptions{})
		_, e3 := admin.Secrets(ns).Get(ctx, "short-1", metav1.GetOptions{})
		checks = append(checks, e1, e2, e3)
		for i, e := range checks {
			if apierrors.IsNotFound(e) {
				w.CompanionsGone = append(w.CompanionsGone, companions[i])
			} else {
				w.CompanionsLeft = append(w.CompanionsLeft, companions[i])
			}
		}
		return len(w.CompanionsLeft) == 0, nil
	})
	if err != nil {
		return fmt.Errorf("companions left behind: %v", w.CompanionsLeft)
	}
	s.p.OK("deleted with it: %v", w.CompanionsGone)
	_, errPod := admin.Pods(ns).Get(ctx, long.Name, metav1.GetOptions{})
	_, errCM := admin.ConfigMaps(ns).Get(ctx, "long-1", metav1.GetOptions{})
	w.OtherJobSurvive = errPod == nil && errCM == nil
	if !w.OtherJobSurvive {
		return fmt.Errorf("job long-1 was touched: pod %v, configmap %v", errPod, errCM)
	}
	s.p.OK("job long-1 (walltime 2h) and its ConfigMap are untouched")
	err = testenv.Poll(ctx, pollInterval, 10*time.Second, func() (bool, error) {
		evs, err := admin.Events(ns).List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("involvedObject.name", short.Name).String()})
		if err != nil {
			return false, err
		}
		for _, e := range evs.Items {
			if e.Source.Component == "job-pod-reaper" && e.Type == corev1.EventTypeWarning && e.Reason != "" && containsWalltime(e.Message) {
				w.Event = e.Reason + ": " + e.Message
			}
		}
		return w.Event != "", nil
	})
	if err != nil {
		return fmt.Errorf("no job-pod-reaper Event on %s: %w", short.Name, err)
	}
	s.p.Line("Event on the pod (kubectl describe pod / get events): %s", w.Event)
	reaper.stop()
	return nil
}

func containsWalltime(msg string) bool {
	return strings.Contains(msg, "walltime") || strings.Contains(msg, "lifetime")
}
