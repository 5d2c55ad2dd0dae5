package tests

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// Schema fragments: Helm validates values only against each chart's own
// values.schema.json and cannot $ref another chart's file offline, so the
// properties the charts share are written once, in
// kubehpc-lib/schema/fragments.json, and copied into each chart's schema.
// TestSchemasFromLibrary checks every copy equals its fragment; -update
// rewrites the copies from the fragments (keeping every other property and
// the files' order and layout).

// fragmentTargets are where each fragment group is copied: a chart (or
// kubehpc-lib) and the path of the properties object in its schema.
var fragmentTargets = []struct {
	chart, group string
	path         []string
}{
	{"kubehpc-lib", "ldap", []string{"properties", "global", "properties", "ldap", "properties"}},
	{"ldap-configmap", "chart", []string{"properties"}},
	{"ldap-configmap", "tool", []string{"properties"}},
	{"ldap-configmap", "ldap", []string{"properties", "ldap", "properties"}},
	{"job-pod-reaper", "chart", []string{"properties"}},
	{"job-pod-reaper", "tool", []string{"properties"}},
	{"namespace-reaper", "chart", []string{"properties"}},
	{"namespace-reaper", "tool", []string{"properties"}},
	{"namespace-bootstrap", "chart", []string{"properties"}},
	{"namespace-bootstrap", "tool", []string{"properties"}},
	{"namespace-bootstrap", "ldap", []string{"properties", "ldap", "properties"}},
	{"policies", "chart", []string{"properties"}},
}

// TestSchemasFromLibrary: the properties the charts share (enabled, global,
// the run and pod settings of the four tools, the LDAP settings of
// ldap-configmap, namespace-bootstrap and global.ldap) are copies of the
// fragments in kubehpc-lib; every chart is a target of at least the
// "chart" group.
func TestSchemasFromLibrary(t *testing.T) {
	fragments, err := readJSONFile(filepath.Join(library(t), "schema", "fragments.json"))
	if err != nil {
		t.Fatal(err)
	}
	covered := map[string]bool{}
	files := map[string]*jsonObject{}
	var order []string
	for _, tg := range fragmentTargets {
		covered[tg.chart] = covered[tg.chart] || tg.group == "chart"
		file := filepath.Join(subchart(t, tg.chart), "values.schema.json")
		schema, ok := files[file]
		if !ok {
			if schema, err = readJSONFile(file); err != nil {
				t.Fatal(err)
			}
			files[file] = schema
			order = append(order, file)
		}
		group, ok := fragments.get(tg.group).(*jsonObject)
		if !ok || len(group.keys) == 0 {
			t.Fatalf("fragments.json has no group %q", tg.group)
		}
		props, ok := schema.dig(tg.path...)
		if !ok {
			t.Fatalf("%s/values.schema.json has no object at %s", tg.chart, strings.Join(tg.path, "."))
		}
		for _, k := range group.keys {
			if reflect.DeepEqual(plain(props.get(k)), plain(group.get(k))) {
				continue
			}
			if *update {
				props.set(k, group.get(k))
				continue
			}
			t.Errorf("%s/values.schema.json: %s.%s differs from kubehpc-lib/schema/fragments.json %s.%s: run go test -run TestSchemasFromLibrary -update",
				tg.chart, strings.Join(tg.path, "."), k, tg.group, k)
		}
	}
	for _, s := range subcharts {
		if !covered[s] {
			t.Errorf("%s takes no fragment group \"chart\" (enabled, global, kubehpc-lib)", s)
		}
	}
	if *update {
		for _, file := range order {
			var b bytes.Buffer
			writeJSON(&b, files[file], "")
			b.WriteString("\n")
			if err := os.WriteFile(file, b.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// jsonObject is a JSON object that keeps the order of its keys.
type jsonObject struct {
	keys []string
	vals map[string]any // *jsonObject, []any, json.Number, string, bool or nil
}

func (o *jsonObject) get(k string) any { return o.vals[k] }

func (o *jsonObject) set(k string, v any) {
	if _, ok := o.vals[k]; !ok {
		o.keys = append(o.keys, k)
	}
	o.vals[k] = v
}

// dig follows a path of keys through nested objects.
func (o *jsonObject) dig(path ...string) (*jsonObject, bool) {
	cur := o
	for _, p := range path {
		next, ok := cur.get(p).(*jsonObject)
		if !ok {
			return nil, false
		}
		cur = next
	}
	return cur, true
}

// plain converts ordered objects to maps, for comparison.
func plain(v any) any {
	switch v := v.(type) {
	case *jsonObject:
		m := make(map[string]any, len(v.keys))
		for _, k := range v.keys {
			m[k] = plain(v.vals[k])
		}
		return m
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = plain(e)
		}
		return out
	}
	return v
}

func readJSONFile(path string) (*jsonObject, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	v, err := readJSON(dec)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	o, ok := v.(*jsonObject)
	if !ok {
		return nil, fmt.Errorf("%s is not a JSON object", path)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: data after the object", path)
	}
	return o, nil
}

// readJSON reads one value, keeping object keys in order.
func readJSON(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch tok {
	case json.Delim('{'):
		o := &jsonObject{vals: map[string]any{}}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, err
			}
			k, _ := kt.(string)
			v, err := readJSON(dec)
			if err != nil {
				return nil, err
			}
			o.set(k, v)
		}
		_, err := dec.Token() // }
		return o, err
	case json.Delim('['):
		a := []any{}
		for dec.More() {
			v, err := readJSON(dec)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		_, err := dec.Token() // ]
		return a, err
	}
	return tok, nil
}

// writeJSON writes v indented by two spaces, as the schema files are laid
// out (Python's json.dumps(indent=2, ensure_ascii=False)).
func writeJSON(w *bytes.Buffer, v any, indent string) {
	in := indent + "  "
	switch v := v.(type) {
	case *jsonObject:
		if len(v.keys) == 0 {
			w.WriteString("{}")
			return
		}
		w.WriteString("{\n")
		for i, k := range v.keys {
			w.WriteString(in)
			writeJSON(w, k, in)
			w.WriteString(": ")
			writeJSON(w, v.vals[k], in)
			if i < len(v.keys)-1 {
				w.WriteString(",")
			}
			w.WriteString("\n")
		}
		w.WriteString(indent + "}")
	case []any:
		if len(v) == 0 {
			w.WriteString("[]")
			return
		}
		w.WriteString("[\n")
		for i, e := range v {
			w.WriteString(in)
			writeJSON(w, e, in)
			if i < len(v)-1 {
				w.WriteString(",")
			}
			w.WriteString("\n")
		}
		w.WriteString(indent + "]")
	case json.Number:
		w.WriteString(v.String())
	default:
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(v)       // a string, bool or nil cannot fail
		w.Truncate(w.Len() - 1) // Encode's newline
	}
}
