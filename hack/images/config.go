package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Options are what one build makes.
type Options struct {
	// Root is the repository root; each tool is built from Root/<tool>.
	Root string
	// Out receives an OCI image layout per tool (Out/<tool>) and its index
	// digest (Out/<tool>.digest).
	Out string
	// Version is the image tag and the binaries' main.version.
	Version string
	// Revision is the source commit (label org.opencontainers.image.revision).
	Revision string
	// Created is the commit time in Unix seconds (SOURCE_DATE_EPOCH): every
	// timestamp in the images.
	Created int64
	// Source is the source repository's URL.
	Source string
	// Licenses is the SPDX licence expression of the images.
	Licenses string
	// Platforms are os/arch pairs, e.g. linux/amd64.
	Platforms []v1.Platform
	// Registry, when set, is where each tool's index is pushed, as
	// Registry/<tool>:<Version>.
	Registry string
	// Tools are the tools to build.
	Tools []string

	parse func() error // finishes the flags FlagSet could not type
}

// FlagSet returns the command's flags bound to o, with defaults.
func (o *Options) FlagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("images", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: images [flags] TOOL...\n\nBuilds an OCI image per tool into --out (and pushes it with --registry).\n\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&o.Root, "root", "../..", "repository root: each TOOL is built from <root>/TOOL")
	fs.StringVar(&o.Out, "out", "../../build/images", "directory that receives an OCI image layout per tool (<out>/TOOL) and its digest (<out>/TOOL.digest)")
	fs.StringVar(&o.Version, "version", "", "image tag and the binaries' version (required)")
	fs.StringVar(&o.Revision, "revision", "", "source commit, recorded in the org.opencontainers.image.revision label (required)")
	created := os.Getenv("SOURCE_DATE_EPOCH")
	fs.Func("created", "commit time in Unix seconds; every timestamp in the images (default $SOURCE_DATE_EPOCH)", func(s string) error {
		created = s
		return nil
	})
	fs.StringVar(&o.Source, "source", "https://github.com/kubehpc/kubehpc", "source repository URL (org.opencontainers.image.source)")
	fs.StringVar(&o.Licenses, "licenses", "NOASSERTION", "SPDX licence expression (org.opencontainers.image.licenses)")
	platforms := "linux/amd64,linux/arm64"
	fs.StringVar(&platforms, "platforms", platforms, "comma-separated os/arch list")
	fs.StringVar(&o.Registry, "registry", "", "push each tool's image index to <registry>/TOOL:<version> (e.g. registry.example.org/kubehpc); empty pushes nothing")
	o.parse = func() error {
		var errs []error
		if created == "" {
			errs = append(errs, errors.New("--created (or SOURCE_DATE_EPOCH) is required: the commit time makes builds reproducible"))
		} else if n, err := strconv.ParseInt(created, 10, 64); err != nil || n < 0 {
			errs = append(errs, fmt.Errorf("--created %q: want Unix seconds", created))
		} else {
			o.Created = n
		}
		o.Platforms = nil
		for _, p := range strings.Split(platforms, ",") {
			goos, arch, ok := strings.Cut(strings.TrimSpace(p), "/")
			if !ok || goos != "linux" || (arch != "amd64" && arch != "arm64") {
				errs = append(errs, fmt.Errorf("--platforms: %q is not linux/amd64 or linux/arm64", p))
				continue
			}
			o.Platforms = append(o.Platforms, v1.Platform{OS: goos, Architecture: arch})
		}
		return errors.Join(errs...)
	}
	return fs
}

var (
	// tagPattern is the OCI distribution spec's tag grammar.
	tagPattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)
	// registryPattern is host[:port][/path], as the charts' global.imageRegistry.
	registryPattern = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]+)?(/[a-z0-9]+([._-]+[a-z0-9]+)*)*$`)
)

// Validate checks the options after parsing, gathering every error.
func (o *Options) Validate() error {
	var errs []error
	if o.parse != nil {
		if err := o.parse(); err != nil {
			errs = append(errs, err)
		}
	}
	if !tagPattern.MatchString(o.Version) {
		errs = append(errs, fmt.Errorf("--version %q is not a valid image tag (letters, digits, '_', '.', '-'; at most 128)", o.Version))
	}
	if o.Revision == "" {
		errs = append(errs, errors.New("--revision is required"))
	}
	if o.Out == "" {
		errs = append(errs, errors.New("--out is required"))
	}
	if len(o.Platforms) == 0 {
		errs = append(errs, errors.New("--platforms is empty"))
	}
	if len(o.Tools) == 0 {
		errs = append(errs, errors.New("no TOOL given"))
	}
	if o.Registry != "" && !registryPattern.MatchString(o.Registry) {
		errs = append(errs, fmt.Errorf("--registry %q: want host[:port][/path], e.g. registry.example.org/kubehpc (no scheme, no trailing /)", o.Registry))
	}
	for _, t := range o.Tools {
		if _, err := os.Stat(filepath.Join(o.Root, t, "main.go")); err != nil {
			errs = append(errs, fmt.Errorf("tool %q: %w", t, err))
		}
		if o.Registry != "" && registryPattern.MatchString(o.Registry) {
			if _, err := name.NewTag(o.Registry + "/" + t + ":" + o.Version); err != nil {
				errs = append(errs, fmt.Errorf("--registry %q: %w", o.Registry, err))
			}
		}
	}
	return errors.Join(errs...)
}

// created is the build's one timestamp.
func (o *Options) created() time.Time { return time.Unix(o.Created, 0).UTC() }
