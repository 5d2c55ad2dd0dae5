package events_test

import (
	"context"
	"os"
	"testing"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/utils/clock"

	"github.com/kubehpc/kubehpc/pkg/events"
	"github.com/kubehpc/kubehpc/pkg/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, testenv.Options{Kube: true}, &env)) }

// TestSyncRecorder proves an Event is in the API server when the call
// returns (no waiting), for a namespaced object (its namespace) and a
// cluster-scoped one (the default namespace).
func TestSyncRecorder(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t, "events-", nil)
	cm, err := env.Kube.Client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	nsObj, err := env.Kube.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rec := events.NewSyncRecorder(env.Kube.Client, "my-tool", clock.RealClock{}, zap.NewNop())
	rec.Eventf(cm, corev1.EventTypeNormal, "Synced", "wrote %d keys", 3)
	rec.Event(nsObj, corev1.EventTypeWarning, "Reaped", "idle")
	tests := []struct{ namespace, name, reason, message string }{
		{ns, "cm", "Synced", "wrote 3 keys"},
		{metav1.NamespaceDefault, ns, "Reaped", "idle"},
	}
	for _, tt := range tests {
		list, err := env.Kube.Client.CoreV1().Events(tt.namespace).List(ctx, metav1.ListOptions{
			FieldSelector: fields.OneTermEqualSelector("involvedObject.name", tt.name).String()})
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Items) != 1 {
			t.Fatalf("Events for %s/%s = %d, want 1 right after the call", tt.namespace, tt.name, len(list.Items))
		}
		e := list.Items[0]
		if e.Reason != tt.reason || e.Message != tt.message || e.Source.Component != "my-tool" {
			t.Errorf("Event = %s %q from %q, want %s %q from my-tool", e.Reason, e.Message, e.Source.Component, tt.reason, tt.message)
		}
	}
}
