// Package events records Kubernetes Events on the objects a tool acts on, so
// that users see why a pod or namespace went away (kubectl describe).
package events

import (
	"context"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
)

// NewRecorder returns an EventRecorder reporting as component, and a function
// that flushes and stops it. Events are written asynchronously.
func NewRecorder(client kubernetes.Interface, component string, log *zap.Logger) (record.EventRecorder, func()) {
	b := record.NewBroadcaster(record.WithContext(context.Background()))
	b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	b.StartEventWatcher(func(e *corev1.Event) {
		log.Debug("Recorded event", zap.String("namespace", e.InvolvedObject.Namespace),
			zap.String("kind", e.InvolvedObject.Kind), zap.String("name", e.InvolvedObject.Name),
			zap.String("reason", e.Reason), zap.String("message", e.Message))
	})
	return b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: component}), b.Shutdown
}
