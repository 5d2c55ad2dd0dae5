package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// compile builds tool's static binary for p into dir and returns its path.
// The flags make the binary depend only on the source, the module cache and
// the Go version: no cgo, no paths of the build machine (-trimpath), no VCS
// stamp (the image labels carry the revision), no symbol table (-s -w), and
// the baseline instruction set whatever GOAMD64/GOARM64 the caller has.
func compile(ctx context.Context, o Options, tool string, p v1.Platform, dir string) (string, error) {
	out := filepath.Join(dir, tool+"-"+p.OS+"-"+p.Architecture)
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false",
		"-ldflags", "-s -w -X main.version="+o.Version, "-o", out, ".")
	cmd.Dir = filepath.Join(o.Root, tool)
	cmd.Env = append(os.Environ(), "GOWORK=off", "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Architecture,
		"GOAMD64=v1", "GOARM64=v8.0", "GOFLAGS=-mod=readonly")
	var output bytes.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build %s for %s/%s: %w\n%s", tool, p.OS, p.Architecture, err, strings.TrimSpace(output.String()))
	}
	return out, nil
}
