package testenv

import (
	"os/exec"
	"path/filepath"
	"testing"
)

func TestBuildBinary(t *testing.T) {
	bin := BuildBinary(t, filepath.Join("testdata", "hello"))
	if filepath.Base(bin) != "hello" {
		t.Errorf("BuildBinary(testdata/hello) = %s, want a binary named hello", bin)
	}
	out, err := exec.Command(bin).Output()
	if err != nil || string(out) != "hello\n" {
		t.Errorf("%s = %q, %v; want hello", bin, out, err)
	}
}
