package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

func TestCases(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{"a.yaml": "name: first\n", "b.yaml": `{"name": "second"}`, "c.golden": "not a case"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]string{}
	Cases(t, dir, func(t *testing.T, file string, in *struct {
		Name string `json:"name"`
	}) {
		got[filepath.Base(file)+"@"+t.Name()] = in.Name
	})
	want := map[string]string{"a.yaml@TestCases/a": "first", "b.yaml@TestCases/b": "second"}
	if len(got) != len(want) {
		t.Fatalf("cases = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("cases = %v, want %v", got, want)
		}
	}
}
