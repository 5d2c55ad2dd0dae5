package mapsync

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubehpc/kubehpc/pkg/testenv"
)

// planCase is a testdata/plan/*.json file: what a pass read, and the guard.
type planCase struct {
	Comment   string
	Namespace string
	Guard     Guard
	State     State
}

// goldenPlan is the part of a Plan the golden files hold (errors as text).
type goldenPlan struct {
	Refused     []string `json:",omitempty"`
	ConfigMaps  []goldenMap
	Annotations *goldenAnnotations `json:",omitempty"`
}

type goldenMap struct {
	Name         string
	Write        bool
	Diff         Diff
	Size, Stored int
	TooLarge     string `json:",omitempty"`
}

type goldenAnnotations struct {
	Changes          []AnnotationChange
	Current, Desired int
}

func golden(p Plan) goldenPlan {
	var g goldenPlan
	for _, err := range p.Refused {
		g.Refused = append(g.Refused, err.Error())
	}
	for _, c := range p.ConfigMaps {
		m := goldenMap{Name: c.Name, Write: c.Write, Diff: c.Diff, Size: c.Size, Stored: c.Stored}
		if c.TooLarge != nil {
			m.TooLarge = c.TooLarge.Error()
		}
		g.ConfigMaps = append(g.ConfigMaps, m)
	}
	if a := p.Annotations; a != nil {
		g.Annotations = &goldenAnnotations{Changes: a.Changes, Current: a.Current, Desired: a.Desired}
	}
	return g
}

// TestDecideGolden plans each pass of testdata/plan/*.json (what a pass
// read: maps as they are and as rendered, namespaces, identities,
// collisions) with Decide, without a cluster, and compares the plan with
// its .golden file: which maps are written and why, their diff and sizes,
// the guards' refusals, the annotation changes. go test -run
// TestDecideGolden -update rewrites the golden files (as for help.txt).
func TestDecideGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "plan", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no plan cases in testdata/plan (%v)", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var c planCase
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&c); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			got, err := json.MarshalIndent(golden(Decide(c.Namespace, c.Guard, c.State)), "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join("testdata", "plan", name+".golden")
			want := testenv.Golden(t, path, string(got), *update)
			if string(got) != want {
				t.Errorf("plan of %s differs from %s:\n--- got\n%s\n--- want\n%s", f, path, got, want)
			}
		})
	}
}
