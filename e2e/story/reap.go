package story

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubehpc/kubehpc/pkg/identity"
	"github.com/kubehpc/kubehpc/pkg/testenv"
)

// IdleNamespaces makes dave's namespace idle (his last login a month ago, no
// pods) and runs namespace-reaper once with a short window: dave's namespace
// goes, alice's (a login just now, a running job) stays.
func (s *Story) IdleNamespaces(ctx context.Context) error {
	const window = 3 * time.Second
	r := &s.Results.Reap
	r.Idle, r.Active = "user-dave", "user-alice"
	nsc := s.env.Kube.Client.CoreV1().Namespaces()
	old := strconv.FormatInt(time.Now().Add(-30*24*time.Hour).Unix(), 10)
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{identity.LastHookExecutionAnnotation: old}}})
	if _, err := nsc.Patch(ctx, r.Idle, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("age dave's last login: %w", err)
	}
	s.p.OK("dave's last login set to 30 days ago; he has no pods")
	// Both namespaces must be older than the window (they were made moments ago).
	if err := testenv.Poll(ctx, pollInterval, 2*window, func() (bool, error) {
		n, err := nsc.Get(ctx, r.Active, metav1.GetOptions{})
		return err == nil && time.Since(n.CreationTimestamp.Time) > window+time.Second, err
	}); err != nil {
		return err
	}
	log, err := s.runOnce(ctx, "namespace-reaper", "--once", "--reap-after="+window.String(), "--last-used-threshold=1h", "--activity-record-interval=1s")
	if err != nil {
		return err
	}
	err = testenv.Poll(ctx, pollInterval, 90*time.Second, func() (bool, error) {
		_, err := nsc.Get(ctx, r.Idle, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		return fmt.Errorf("%s was not deleted: %w\n%s", r.Idle, err, tailLines(log, 15))
	}
	r.IdleDeleted = true
	s.p.OK("namespace-reaper --once --reap-after=%v --last-used-threshold=1h deleted %s (the controller-manager finished the deletion)", window, r.Idle)
	n, err := nsc.Get(ctx, r.Active, metav1.GetOptions{})
	r.ActiveKept = err == nil && n.DeletionTimestamp == nil
	if !r.ActiveKept {
		return fmt.Errorf("%s was deleted or is terminating: %v", r.Active, err)
	}
	s.p.OK("%s kept: a login just now and a running job", r.Active)
	evs, err := s.env.Kube.Client.CoreV1().Events("").List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("involvedObject.name", r.Idle).String()})
	if err == nil {
		for _, e := range evs.Items {
			if e.Source.Component == "namespace-reaper" {
				r.Event = e.Reason + ": " + e.Message
			}
		}
	}
	if r.Event != "" {
		s.p.Line("Event: %s", r.Event)
	}
	return nil
}
