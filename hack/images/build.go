package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Build compiles every tool for every platform, writes each tool's image
// index as an OCI image layout under o.Out, pushes it when o.Registry is set,
// and prints a summary (digests and sizes) to w.
func Build(ctx context.Context, o Options, w io.Writer) error {
	ca, included, constrained, err := caBundle()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "CA bundle: %d roots (%d distrust-after roots left out)\n", included, constrained)
	tmp, err := os.MkdirTemp("", "kubehpc-images-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", o.Out, err)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "IMAGE\tPLATFORM\tBINARY\tLAYER (gzip)\tDIGEST")
	for _, tool := range o.Tools {
		var images []mutate.IndexAddendum
		for _, p := range o.Platforms {
			path, err := compile(ctx, o, tool, p, tmp)
			if err != nil {
				return err
			}
			binary, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			img, err := newImage(o, tool, p, binary, ca)
			if err != nil {
				return err
			}
			size, err := layerSize(img)
			if err != nil {
				return err
			}
			digest, err := img.Digest()
			if err != nil {
				return err
			}
			fmt.Fprintf(tw, "%s\t%s/%s\t%s\t%s\t%s\n", tool, p.OS, p.Architecture, mib(int64(len(binary))), mib(size), digest)
			images = append(images, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
		}
		idx := newIndex(o, tool, images)
		digest, err := idx.Digest()
		if err != nil {
			return fmt.Errorf("digest of %s: %w", tool, err)
		}
		if err := writeLayout(filepath.Join(o.Out, tool), idx, o.Version); err != nil {
			return fmt.Errorf("write %s: %w", tool, err)
		}
		if err := os.WriteFile(filepath.Join(o.Out, tool+".digest"), []byte(digest.String()+"\n"), 0o644); err != nil {
			return err
		}
		ref := tool + ":" + o.Version
		if o.Registry != "" {
			tag, err := name.NewTag(o.Registry + "/" + ref)
			if err != nil {
				return err
			}
			if err := remote.WriteIndex(tag, idx, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
				return fmt.Errorf("push %s: %w", tag, err)
			}
			ref = tag.String()
		}
		fmt.Fprintf(tw, "%s\tindex\t\t\t%s\n", ref, digest)
	}
	return tw.Flush()
}

// writeLayout replaces dir with an OCI image layout holding idx, tagged
// version (the org.opencontainers.image.ref.name annotation).
func writeLayout(dir string, idx v1.ImageIndex, version string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	return p.AppendIndex(idx, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": version}))
}

// layerSize is the compressed size of an image's layers.
func layerSize(img v1.Image) (int64, error) {
	layers, err := img.Layers()
	if err != nil {
		return 0, err
	}
	var total int64
	for _, l := range layers {
		n, err := l.Size()
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
