package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const (
	// nonRoot is the UID and GID the images run as (distroless's "nonroot"),
	// numeric so that Kubernetes' runAsNonRoot can check it without a
	// passwd file.
	nonRoot = "65532:65532"
	// binDir holds the tool's binary.
	binDir = "usr/local/bin/"
)

// entry is one file or directory of the layer.
type entry struct {
	name string
	mode int64
	data []byte // nil for a directory
}

// layerEntries are the image's whole file system: the binary, the CA bundle
// and the directories that hold them, plus an empty /tmp. Everything is owned
// by root and not writable by the UID the image runs as.
func layerEntries(tool string, binary, ca []byte) []entry {
	return []entry{
		{name: "etc/", mode: 0o755},
		{name: "etc/ssl/", mode: 0o755},
		{name: "etc/ssl/certs/", mode: 0o755},
		{name: caBundlePath, mode: 0o644, data: ca},
		{name: "tmp/", mode: 0o1777},
		{name: "usr/", mode: 0o755},
		{name: "usr/local/", mode: 0o755},
		{name: binDir, mode: 0o755},
		{name: binDir + tool, mode: 0o755, data: binary},
	}
}

// layer returns the gzipped tar of entries, every timestamp set to mtime.
// Go's tar and gzip writers are deterministic (the gzip header has no name
// and no time), so equal inputs give an equal digest.
func layer(entries []entry, mtime time.Time) (v1.Layer, error) {
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, ModTime: mtime, Typeflag: tar.TypeDir}
		if e.data != nil {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("tar header %s: %w", e.name, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, fmt.Errorf("tar %s: %w", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("close tar: %w", err)
	}
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.DefaultCompression) // level 9: 1 % smaller, 3x slower
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(tarBuf.Bytes()); err != nil {
		return nil, fmt.Errorf("gzip layer: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("gzip layer: %w", err)
	}
	// Compressed once here; the opener hands the same bytes to every reader
	// (go-containerregistry sees the gzip header and does not recompress).
	compressed := gz.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(compressed)), nil
	}, tarball.WithMediaType(types.OCILayer))
}

// labels are the OCI annotations of every image and index of a tool.
func labels(o Options, tool string) map[string]string {
	return map[string]string{
		"org.opencontainers.image.title":       tool,
		"org.opencontainers.image.description": "kubehpc " + tool,
		"org.opencontainers.image.source":      o.Source,
		"org.opencontainers.image.url":         o.Source,
		"org.opencontainers.image.revision":    o.Revision,
		"org.opencontainers.image.version":     o.Version,
		"org.opencontainers.image.licenses":    o.Licenses,
		"org.opencontainers.image.created":     o.created().Format(time.RFC3339),
	}
}

// newImage is the image of tool for p: one layer, an OCI manifest and config.
func newImage(o Options, tool string, p v1.Platform, binary, ca []byte) (v1.Image, error) {
	l, err := layer(layerEntries(tool, binary, ca), o.created())
	if err != nil {
		return nil, fmt.Errorf("layer of %s for %s/%s: %w", tool, p.OS, p.Architecture, err)
	}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{Layer: l, MediaType: types.OCILayer, History: v1.History{
		Created:   v1.Time{Time: o.created()},
		CreatedBy: "hack/images: /" + binDir + tool + " (go build) and /" + caBundlePath,
	}})
	if err != nil {
		return nil, fmt.Errorf("append layer: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("config of %s: %w", tool, err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = p.OS, p.Architecture
	cf.Created = v1.Time{Time: o.created()}
	cf.Config = v1.Config{
		User:       nonRoot,
		Entrypoint: []string{"/" + binDir + tool},
		Env:        []string{"PATH=/" + binDir[:len(binDir)-1]},
		WorkingDir: "/",
		Labels:     labels(o, tool),
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("set config of %s: %w", tool, err)
	}
	return img, nil
}

// newIndex is the multi-platform index of a tool's images.
func newIndex(o Options, tool string, images []mutate.IndexAddendum) v1.ImageIndex {
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), images...)
	return mutate.Annotations(idx, labels(o, tool)).(v1.ImageIndex)
}
