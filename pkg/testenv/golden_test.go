package testenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestGolden(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plan.golden")
	if got := Golden(t, path, "v1\n", true); got != "v1\n" {
		t.Errorf("Golden(update) = %q, want what it wrote", got)
	}
	if got := Golden(t, path, "v2\n", false); got != "v1\n" {
		t.Errorf("Golden(no update) = %q, want the file's v1 (it must not rewrite)", got)
	}
	if b, _ := os.ReadFile(path); string(b) != "v1\n" {
		t.Errorf("file after Golden(no update) = %q, want v1", b)
	}
	rec := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Golden(rec, filepath.Join(t.TempDir(), "missing.golden"), "x", false)
	}()
	<-done
	if !strings.Contains(rec.msg, "run the test with -update") {
		t.Errorf("Golden(missing file) failed with %q, want the -update hint", rec.msg)
	}
}
