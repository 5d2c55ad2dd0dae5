package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// BuildBinary builds the main package in dir (relative to the test's package
// directory, e.g. ".." for a tool's binary) with GOWORK=off, as an image is
// built, into a directory removed at the test's end, and returns the
// binary's path; the binary is named after dir.
func BuildBinary(t testing.TB, dir string) string {
	t.Helper()
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatalf("build %s: %v", dir, err)
	}
	bin := filepath.Join(t.TempDir(), filepath.Base(abs))
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = abs
	build.Env = append(os.Environ(), "GOWORK=off")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", abs, err, out)
	}
	return bin
}
