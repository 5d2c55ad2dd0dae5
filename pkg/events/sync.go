package events

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/record"
	ref "k8s.io/client-go/tools/reference"
	"k8s.io/utils/clock"
)

// SyncRecorder writes each Event before returning. NewRecorder's recorder
// writes in the background, so a --once process (a CronJob) can exit before
// its Events reach the API server; a tool that records a few Events a pass
// (one per deletion, one per change) writes them inline at little cost.
type SyncRecorder struct {
	client    kubernetes.Interface
	component string
	clock     clock.PassiveClock
	log       *zap.Logger
	timeout   time.Duration
}

var _ record.EventRecorder = (*SyncRecorder)(nil)

// NewSyncRecorder returns a recorder reporting as component that writes
// each Event synchronously (10 s timeout); a failure is logged, never fatal.
func NewSyncRecorder(client kubernetes.Interface, component string, clk clock.PassiveClock, log *zap.Logger) *SyncRecorder {
	return &SyncRecorder{client: client, component: component, clock: clk, log: log, timeout: 10 * time.Second}
}

func (s *SyncRecorder) Event(obj runtime.Object, eventtype, reason, message string) {
	s.AnnotatedEventf(obj, nil, eventtype, reason, "%s", message)
}

func (s *SyncRecorder) Eventf(obj runtime.Object, eventtype, reason, messageFmt string, args ...any) {
	s.AnnotatedEventf(obj, nil, eventtype, reason, messageFmt, args...)
}

// AnnotatedEventf writes the Event in the object's namespace, or in
// "default" for a cluster-scoped object such as a Namespace (as client-go's
// recorder does). A failure is logged, never fatal to the pass.
func (s *SyncRecorder) AnnotatedEventf(obj runtime.Object, annotations map[string]string, eventtype, reason, messageFmt string, args ...any) {
	r, err := ref.GetReference(scheme.Scheme, obj)
	if err != nil {
		s.log.Error("Failed to record event: no object reference", zap.String("reason", reason), zap.Error(err))
		return
	}
	ns := r.Namespace
	if ns == "" {
		ns = metav1.NamespaceDefault
	}
	now := metav1.NewTime(s.clock.Now())
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{
			Name:        fmt.Sprintf("%s.%x", r.Name, now.UnixNano()),
			Namespace:   ns,
			Annotations: annotations,
		},
		InvolvedObject:      *r,
		Reason:              reason,
		Message:             fmt.Sprintf(messageFmt, args...),
		Type:                eventtype,
		Source:              corev1.EventSource{Component: s.component},
		FirstTimestamp:      now,
		LastTimestamp:       now,
		Count:               1,
		ReportingController: s.component,
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	if _, err := s.client.CoreV1().Events(ns).Create(ctx, ev, metav1.CreateOptions{}); err != nil {
		s.log.Error("Failed to record event", zap.String("namespace", ns), zap.String("name", r.Name),
			zap.String("reason", reason), zap.Error(err))
		return
	}
	s.log.Debug("Recorded event", zap.String("kind", r.Kind), zap.String("name", r.Name), zap.String("reason", reason))
}
