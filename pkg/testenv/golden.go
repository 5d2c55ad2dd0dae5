package testenv

import (
	"errors"
	"io/fs"
	"os"
	"testing"
)

// Golden returns the content of the golden file path for a test to compare
// got with, after writing got to it when update is set (the test binary's
// -update flag). A missing file fails the test with the hint to run -update.
func Golden(t testing.TB, path, got string, update bool) string {
	t.Helper()
	if update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatalf("update golden file: %v", err)
		}
	}
	want, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("%v (run the test with -update to write it)", err)
	}
	if err != nil {
		t.Fatalf("read golden file: %v", err)
	}
	return string(want)
}
