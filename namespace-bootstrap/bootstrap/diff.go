package bootstrap

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// HashAnnotation holds, on every object namespace-bootstrap applies, a hash
// of the rendered template of that object. A changed template changes the
// hash, so the object is applied again and fields the template no longer
// names are dropped by server-side apply.
const HashAnnotation = "kubehpc.io/template-hash"

// templateHash returns a short hash of obj's rendered content.
func templateHash(obj *unstructured.Unstructured) string {
	b, err := json.Marshal(obj.Object) // map keys are sorted: stable
	if err != nil {
		// Rendered objects come from JSON; this cannot fail. An empty hash
		// only means "always apply".
		return ""
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// NeedsApply reports whether live (nil when it does not exist) differs from
// desired: missing, made from another template (hash annotation), or
// drifted (a field the template sets has another value). Fields the template
// does not set are not compared: they belong to someone else. ignore lists
// annotations not compared (the login annotation on the namespace).
func NeedsApply(desired, live *unstructured.Unstructured, ignoreAnnotations ...string) (bool, string) {
	if live == nil {
		return true, "missing"
	}
	if h := desired.GetAnnotations()[HashAnnotation]; h == "" || live.GetAnnotations()[HashAnnotation] != h {
		return true, "template changed"
	}
	want := normalize(desired.Object)
	got := normalize(live.Object)
	if md, ok := want.(map[string]any)["metadata"].(map[string]any); ok {
		if ann, ok := md["annotations"].(map[string]any); ok {
			for _, k := range ignoreAnnotations {
				delete(ann, k)
			}
		}
	}
	if path, ok := subset(want, got, ""); !ok {
		return true, "drifted at " + path
	}
	return false, ""
}

// normalize deep-copies v with every number as float64, so that numbers
// decoded from YAML and from the API server compare equal.
func normalize(v any) any {
	switch t := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[k] = normalize(e)
		}
		return m
	case []any:
		s := make([]any, len(t))
		for i, e := range t {
			s[i] = normalize(e)
		}
		return s
	case int64:
		return float64(t)
	case int:
		return float64(t)
	case int32:
		return float64(t)
	case json.Number:
		f, _ := t.Float64()
		return f
	default:
		return v
	}
}

// subset reports whether every field of want is in got with the same value;
// lists must have the same length (lists in these kinds are atomic or keyed
// and fully owned by the template) with each element a subset. It returns
// the path of the first difference.
func subset(want, got any, path string) (string, bool) {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return path, false
		}
		for k, wv := range w {
			gv, ok := g[k]
			if !ok {
				if isEmpty(wv) {
					continue // {} or [] or "" in the template: the server omits it
				}
				return path + "." + k, false
			}
			if p, ok := subset(wv, gv, path+"."+k); !ok {
				return p, false
			}
		}
		return "", true
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return path, false
		}
		for i := range w {
			if p, ok := subset(w[i], g[i], fmt.Sprintf("%s[%d]", path, i)); !ok {
				return p, false
			}
		}
		return "", true
	default:
		if !reflect.DeepEqual(want, got) {
			return path, false
		}
		return "", true
	}
}

func isEmpty(v any) bool {
	switch t := v.(type) {
	case nil:
		return true
	case map[string]any:
		return len(t) == 0
	case []any:
		return len(t) == 0
	case string:
		return t == ""
	}
	return false
}
