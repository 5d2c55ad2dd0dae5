package testenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// Cases runs run as a subtest for each dir/*.yaml file (the golden plan
// tests' snapshots), named for the file without .yaml and given the file's
// path and its content decoded (YAML or JSON) into a new T. No file at all
// fails the test: a mistyped directory must not pass by testing nothing.
func Cases[T any](t *testing.T, dir string, run func(t *testing.T, file string, in *T)) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no %s/*.yaml: %v", dir, err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".yaml"), func(t *testing.T) {
			f, err := os.Open(file)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			in := new(T)
			if err := utilyaml.NewYAMLOrJSONDecoder(f, 4096).Decode(in); err != nil {
				t.Fatalf("decode %s: %v", file, err)
			}
			run(t, file, in)
		})
	}
}
