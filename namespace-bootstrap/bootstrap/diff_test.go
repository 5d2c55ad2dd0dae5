package bootstrap

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func obj(m map[string]any) *unstructured.Unstructured { return &unstructured.Unstructured{Object: m} }

func TestNeedsApply(t *testing.T) {
	desired := func() *unstructured.Unstructured {
		return obj(map[string]any{
			"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
			"metadata": map[string]any{"name": "np", "annotations": map[string]any{HashAnnotation: "h1"}},
			"spec": map[string]any{"podSelector": map[string]any{}, "ingress": []any{
				map[string]any{"ports": []any{map[string]any{"port": float64(80)}}},
			}},
		})
	}
	live := func(mut func(m map[string]any)) *unstructured.Unstructured {
		m := desired().DeepCopy().Object
		m["metadata"].(map[string]any)["resourceVersion"] = "7"
		m["spec"].(map[string]any)["ingress"].([]any)[0].(map[string]any)["ports"].([]any)[0].(map[string]any)["port"] = int64(80)
		m["spec"].(map[string]any)["ingress"].([]any)[0].(map[string]any)["ports"].([]any)[0].(map[string]any)["protocol"] = "TCP"
		if mut != nil {
			mut(m)
		}
		return obj(m)
	}
	tests := []struct {
		name   string
		live   *unstructured.Unstructured
		want   bool
		reason string
	}{
		{name: "missing", live: nil, want: true, reason: "missing"},
		{name: "up to date, with server defaults and int64 numbers", live: live(nil)},
		{name: "empty map omitted by the server", live: live(func(m map[string]any) { delete(m["spec"].(map[string]any), "podSelector") })},
		{name: "other template", live: live(func(m map[string]any) {
			m["metadata"].(map[string]any)["annotations"] = map[string]any{HashAnnotation: "old"}
		}), want: true, reason: "template changed"},
		{name: "changed value", live: live(func(m map[string]any) {
			m["spec"].(map[string]any)["ingress"].([]any)[0].(map[string]any)["ports"].([]any)[0].(map[string]any)["port"] = int64(81)
		}), want: true, reason: "drifted at .spec.ingress[0].ports[0].port"},
		{name: "list grew", live: live(func(m map[string]any) {
			m["spec"].(map[string]any)["ingress"] = append(m["spec"].(map[string]any)["ingress"].([]any), map[string]any{})
		}), want: true, reason: "drifted at .spec.ingress"},
		{name: "someone else's label", live: live(func(m map[string]any) {
			m["metadata"].(map[string]any)["labels"] = map[string]any{"x": "y"}
		})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, reason := NeedsApply(desired(), tt.live)
			if got != tt.want || reason != tt.reason {
				t.Errorf("NeedsApply() = %v, %q; want %v, %q", got, reason, tt.want, tt.reason)
			}
		})
	}
}
