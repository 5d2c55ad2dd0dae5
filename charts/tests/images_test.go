package tests

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/x509"
	"debug/elf"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/kubehpc/kubehpc/pkg/testenv"
)

// imageTools are the four binaries, one image each.
var imageTools = []string{"ldap-configmap", "job-pod-reaper", "namespace-reaper", "namespace-bootstrap"}

// platforms are the platforms of every image index.
var platforms = []string{"linux/amd64", "linux/arm64"}

// artefacts is what `make images` and `make chart` published into a local
// OCI registry, once per test binary.
type artefacts struct {
	host         string // the registry's host:port on loopback
	version      string // VERSION: image tag and the chart's appVersion
	chartVersion string
	// digests are each tool's index digest from the first build, and
	// rebuilt from a second build of the same commit.
	digests, rebuilt map[string]string
	revision         string
	created          time.Time
}

// imageRegistry is the global.imageRegistry (and make's REGISTRY) of the tests.
func (a *artefacts) imageRegistry() string { return a.host + "/kubehpc" }

var (
	artefactsOnce sync.Once
	published     *artefacts
	publishErr    error
)

// publish starts an in-process OCI registry (go-containerregistry's
// registry package) on loopback and runs, as a release would, `make images
// REGISTRY=…` and `make chart CHART_REGISTRY=oci://…` against it, plus a
// second `make images` of the same commit to compare digests. It runs once
// per test binary; the registry lives until the binary exits.
func publish(t *testing.T) *artefacts {
	t.Helper()
	artefactsOnce.Do(func() { published, publishErr = doPublish(t) })
	if publishErr != nil {
		t.Fatalf("publish the images and the chart: %v", publishErr)
	}
	return published
}

func doPublish(t *testing.T) (*artefacts, error) {
	root, err := testenv.RepoRoot()
	if err != nil {
		return nil, err
	}
	helmBin, err := testenv.Helm()
	if err != nil {
		return nil, err
	}
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	a := &artefacts{host: strings.TrimPrefix(srv.URL, "http://"), version: "0.9.0-test", chartVersion: "0.9.0-test",
		digests: map[string]string{}, rebuilt: map[string]string{}}
	if a.revision, err = git(root, "rev-parse", "HEAD"); err != nil {
		return nil, err
	}
	epoch, err := git(root, "log", "-1", "--format=%ct")
	if err != nil {
		return nil, err
	}
	sec, err := strconv.ParseInt(epoch, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("commit time %q: %w", epoch, err)
	}
	a.created = time.Unix(sec, 0).UTC()

	// Not t.TempDir: publish runs once for several tests. The layouts are
	// removed once the digests are read; the tests pull from the registry.
	work, err := os.MkdirTemp("", "kubehpc-release-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	start := time.Now()
	for i, dir := range []string{"images-1", "images-2"} {
		args := []string{"-C", root, "images", "VERSION=" + a.version, "IMAGES_DIR=" + filepath.Join(work, dir)}
		if i == 0 {
			args = append(args, "REGISTRY="+a.imageRegistry())
		}
		out, err := runTimeout(t, 30*time.Minute, "make", args...)
		if err != nil {
			return nil, err
		}
		t.Logf("make images (build %d) took %v:\n%s", i+1, time.Since(start).Round(time.Second), out)
		start = time.Now()
		for _, tool := range imageTools {
			b, err := os.ReadFile(filepath.Join(work, dir, tool+".digest"))
			if err != nil {
				return nil, err
			}
			map[int]map[string]string{0: a.digests, 1: a.rebuilt}[i][tool] = strings.TrimSpace(string(b))
		}
	}
	out, err := runTimeout(t, 5*time.Minute, "make", "-C", root, "chart", "VERSION="+a.version, "CHART_DIR="+filepath.Join(work, "chart"),
		"CHART_REGISTRY=oci://"+a.host+"/charts", "HELM_PUSH_FLAGS=--plain-http", "HELM="+helmBin)
	if err != nil {
		return nil, err
	}
	t.Logf("make chart:\n%s", out)
	return a, nil
}

// git runs git in dir and returns its trimmed output.
func git(dir string, args ...string) (string, error) {
	out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %w", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out)), nil
}

// TestImagesReproducible checks that two builds of one commit give the same
// index digest for every tool (so a site can rebuild and compare).
func TestImagesReproducible(t *testing.T) {
	a := publish(t)
	for _, tool := range imageTools {
		if a.digests[tool] == "" || a.digests[tool] != a.rebuilt[tool] {
			t.Errorf("%s: digests of two builds of one commit = %q and %q, want equal", tool, a.digests[tool], a.rebuilt[tool])
		}
	}
}

// TestImagesContent pulls every tool's index from the registry and checks
// each platform's config (non-root numeric user, entrypoint, labels from the
// commit), that its one layer holds exactly the binary, the CA bundle and
// their directories, all owned by root, and that the binary is a static ELF
// for its platform. The host platform's binary is run: --version and --help.
func TestImagesContent(t *testing.T) {
	a := publish(t)
	for _, tool := range imageTools {
		t.Run(tool, func(t *testing.T) {
			ref, err := name.NewTag(a.imageRegistry() + "/" + tool + ":" + a.version)
			if err != nil {
				t.Fatal(err)
			}
			idx, err := remote.Index(ref)
			if err != nil {
				t.Fatalf("pull %s: %v", ref, err)
			}
			if d, _ := idx.Digest(); d.String() != a.digests[tool] {
				t.Errorf("%s: digest in the registry %s, want %s (build/images/%s.digest)", ref, d, a.digests[tool], tool)
			}
			im, err := idx.IndexManifest()
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range im.Manifests {
				if m.Platform == nil {
					t.Errorf("%s: manifest %s has no platform", ref, m.Digest)
					continue
				}
				p := m.Platform.OS + "/" + m.Platform.Architecture
				got = append(got, p)
				img, err := idx.Image(m.Digest)
				if err != nil {
					t.Fatalf("%s %s: %v", ref, p, err)
				}
				checkImage(t, a, tool, *m.Platform, img)
			}
			if !slices.Equal(got, platforms) {
				t.Errorf("%s: platforms %v, want %v", ref, got, platforms)
			}
		})
	}
}

// wantFiles are the only entries of every image's layer, with their modes.
func wantFiles(tool string) map[string]int64 {
	return map[string]int64{
		"etc/": 0o755, "etc/ssl/": 0o755, "etc/ssl/certs/": 0o755, "etc/ssl/certs/ca-certificates.crt": 0o644,
		"tmp/": 0o1777, "usr/": 0o755, "usr/local/": 0o755, "usr/local/bin/": 0o755, "usr/local/bin/" + tool: 0o755,
	}
}

func checkImage(t *testing.T, a *artefacts, tool string, p v1.Platform, img v1.Image) {
	t.Helper()
	plat := p.OS + "/" + p.Architecture
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatalf("%s: config: %v", plat, err)
	}
	if cf.OS != p.OS || cf.Architecture != p.Architecture {
		t.Errorf("%s: config platform %s/%s", plat, cf.OS, cf.Architecture)
	}
	if cf.Config.User != "65532:65532" {
		t.Errorf("%s: config user %q, want 65532:65532 (numeric, so runAsNonRoot can check it)", plat, cf.Config.User)
	}
	if want := []string{"/usr/local/bin/" + tool}; !slices.Equal(cf.Config.Entrypoint, want) || len(cf.Config.Cmd) != 0 {
		t.Errorf("%s: entrypoint %q cmd %q, want %q and no cmd", plat, cf.Config.Entrypoint, cf.Config.Cmd, want)
	}
	if !cf.Created.Time.Equal(a.created) {
		t.Errorf("%s: created %v, want the commit time %v", plat, cf.Created.Time, a.created)
	}
	for k, want := range map[string]string{
		"org.opencontainers.image.source":   "https://github.com/kubehpc/kubehpc",
		"org.opencontainers.image.revision": a.revision,
		"org.opencontainers.image.version":  a.version,
		"org.opencontainers.image.created":  a.created.Format(time.RFC3339),
		"org.opencontainers.image.title":    tool,
	} {
		if got := cf.Config.Labels[k]; got != want {
			t.Errorf("%s: label %s = %q, want %q", plat, k, got, want)
		}
	}
	if cf.Config.Labels["org.opencontainers.image.licenses"] == "" {
		t.Errorf("%s: no org.opencontainers.image.licenses label", plat)
	}

	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("%s: layers %d (%v), want 1", plat, len(layers), err)
	}
	files, err := untar(layers[0])
	if err != nil {
		t.Fatalf("%s: layer: %v", plat, err)
	}
	want := wantFiles(tool)
	for n, f := range files {
		mode, ok := want[n]
		switch {
		case !ok:
			t.Errorf("%s: unexpected file /%s in the image", plat, n)
		case f.hdr.Mode != mode || f.hdr.Uid != 0 || f.hdr.Gid != 0:
			t.Errorf("%s: /%s mode %o owner %d:%d, want %o root:root", plat, n, f.hdr.Mode, f.hdr.Uid, f.hdr.Gid, mode)
		case !f.hdr.ModTime.Equal(a.created):
			t.Errorf("%s: /%s mtime %v, want the commit time", plat, n, f.hdr.ModTime)
		}
	}
	for n := range want {
		if _, ok := files[n]; !ok {
			t.Errorf("%s: /%s missing from the image", plat, n)
		}
	}
	checkCABundle(t, plat, files["etc/ssl/certs/ca-certificates.crt"].data)
	bin := files["usr/local/bin/"+tool].data
	checkELF(t, plat, p.Architecture, bin)
	if p.OS == runtime.GOOS && p.Architecture == runtime.GOARCH {
		runBinary(t, a, tool, bin)
	}
}

type tarFile struct {
	hdr  *tar.Header
	data []byte
}

// untar reads a layer into memory by path.
func untar(l v1.Layer) (map[string]tarFile, error) {
	rc, err := l.Uncompressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	files := map[string]tarFile{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files, nil
		}
		if err != nil {
			return nil, err
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		files[h.Name] = tarFile{hdr: h, data: data}
	}
}

// checkCABundle checks the bundle is PEM certificates only, with the public
// roots in it (so ldaps:// to a publicly signed server verifies).
func checkCABundle(t *testing.T, plat string, b []byte) {
	t.Helper()
	n := 0
	for rest := b; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			if len(bytes.TrimSpace(rest)) != 0 {
				t.Errorf("%s: CA bundle has non-PEM data", plat)
			}
			break
		}
		if _, err := x509.ParseCertificate(block.Bytes); block.Type != "CERTIFICATE" || err != nil {
			t.Errorf("%s: CA bundle block %d: type %s, %v", plat, n, block.Type, err)
		}
		n++
	}
	if n < 100 {
		t.Errorf("%s: CA bundle has %d certificates, want the ~150 public roots", plat, n)
	}
}

// checkELF checks the binary is an executable for arch without a dynamic
// loader (CGO_ENABLED=0: it runs in an image with no libc).
func checkELF(t *testing.T, plat, arch string, bin []byte) {
	t.Helper()
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		t.Errorf("%s: binary is not ELF: %v", plat, err)
		return
	}
	want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[arch]
	if f.Machine != want {
		t.Errorf("%s: binary machine %v, want %v", plat, f.Machine, want)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("%s: binary is dynamically linked (%v)", plat, p.Type)
		}
	}
}

// runBinary runs the image's binary with --version and --help.
func runBinary(t *testing.T, a *artefacts, tool string, bin []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), tool)
	if err := os.WriteFile(path, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, path, "--version")
	if want := tool + " " + a.version + "\n"; err != nil || out != want {
		t.Errorf("%s --version = %q, %v; want %q", tool, out, err, want)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	help, err := exec.CommandContext(ctx, path, "--help").CombinedOutput()
	if err != nil || !strings.Contains(string(help), "Usage of "+tool) || !strings.Contains(string(help), "--version") {
		t.Errorf("%s --help: %v\n%s", tool, err, help)
	}
}

// ociRelease is the release (and namespace) the chart is installed as from
// the registry.
const ociRelease = "kubehpc-oci"

// TestChartFromOCIRegistry installs the chart from the OCI registry
// (as a site would: helm install oci://…) with global.imageRegistry pointing
// at that registry, then checks that every image reference it renders, in
// deployment and in cronjob mode and pinned by digest, resolves there to an
// index with both platforms.
func TestChartFromOCIRegistry(t *testing.T) {
	a := publish(t)
	ctx := context.Background()
	chart := "oci://" + a.host + "/charts/kubehpc"
	// Its own names and namespace, no cluster-scoped objects of the
	// umbrella's: it lives beside the umbrella release of the other tests.
	values := map[string]any{
		"global":   map[string]any{"imageRegistry": a.imageRegistry(), "imagePullSecrets": []any{"site-pull"}},
		"policies": map[string]any{"enabled": false},
	}
	for _, tool := range imageTools {
		values[tool] = map[string]any{"fullnameOverride": "oci-" + tool}
	}
	values["namespace-bootstrap"].(map[string]any)["clusterRoles"] = map[string]any{"create": false}
	values["job-pod-reaper"].(map[string]any)["imagePullSecrets"] = []any{map[string]any{"name": "reaper-pull"}}
	values["job-pod-reaper"].(map[string]any)["image"] = map[string]any{"pullPolicy": "Always"}
	b, err := yaml.Marshal(values)
	if err != nil {
		t.Fatal(err)
	}
	valuesFile := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(valuesFile, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if out, err := helm(t, "uninstall", ociRelease, "--namespace", ociRelease, "--wait"); err != nil {
			t.Logf("helm uninstall: %v\n%s", err, out)
		}
		_ = env.Kube.Client.CoreV1().Namespaces().Delete(ctx, ociRelease, metav1.DeleteOptions{})
	})

	upgrade := func(args ...string) {
		t.Helper()
		base := []string{"upgrade", ociRelease, chart, "--version", a.chartVersion, "--plain-http",
			"--namespace", ociRelease, "--values", valuesFile}
		if _, err := helm(t, append(base, args...)...); err != nil {
			t.Fatal(err)
		}
	}
	tagged := func(tool string) string { return a.imageRegistry() + "/" + tool + ":" + a.version }

	// Deployment mode, tag from the chart's appVersion.
	if _, err := helm(t, "install", ociRelease, chart, "--version", a.chartVersion, "--plain-http",
		"--namespace", ociRelease, "--create-namespace", "--values", valuesFile); err != nil {
		t.Fatal(err)
	}
	pods := map[string]corev1.PodSpec{}
	for _, tool := range imageTools {
		d, err := env.Kube.Client.AppsV1().Deployments(ociRelease).Get(ctx, "oci-"+tool, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("Deployment %s: %v", tool, err)
		}
		pods[tool] = d.Spec.Template.Spec
	}
	checkPodImages(t, "deployment", pods, tagged)
	for tool, spec := range pods {
		wantSecret, wantPolicy := "site-pull", corev1.PullIfNotPresent
		if tool == "job-pod-reaper" {
			wantSecret, wantPolicy = "reaper-pull", corev1.PullAlways
		}
		if want := []corev1.LocalObjectReference{{Name: wantSecret}}; !slices.Equal(spec.ImagePullSecrets, want) {
			t.Errorf("%s: imagePullSecrets %v, want %v", tool, spec.ImagePullSecrets, want)
		}
		if got := spec.Containers[0].ImagePullPolicy; got != wantPolicy {
			t.Errorf("%s: imagePullPolicy %s, want %s", tool, got, wantPolicy)
		}
	}

	// CronJob mode.
	var modes []string
	for _, tool := range imageTools {
		modes = append(modes, "--set", tool+".mode=cronjob")
	}
	upgrade(modes...)
	pods = map[string]corev1.PodSpec{}
	for _, tool := range imageTools {
		cj, err := env.Kube.Client.BatchV1().CronJobs(ociRelease).Get(ctx, "oci-"+tool, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("CronJob %s: %v", tool, err)
		}
		pods[tool] = cj.Spec.JobTemplate.Spec.Template.Spec
	}
	checkPodImages(t, "cronjob", pods, tagged)

	// Pinned by digest: the digest wins over a tag that does not exist.
	var pins []string
	for _, tool := range imageTools {
		pins = append(pins, "--set", tool+".image.digest="+a.digests[tool], "--set", tool+".image.tag=no-such-tag")
	}
	upgrade(pins...)
	pods = map[string]corev1.PodSpec{}
	for _, tool := range imageTools {
		d, err := env.Kube.Client.AppsV1().Deployments(ociRelease).Get(ctx, "oci-"+tool, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("Deployment %s: %v", tool, err)
		}
		pods[tool] = d.Spec.Template.Spec
	}
	checkPodImages(t, "digest", pods, func(tool string) string { return a.imageRegistry() + "/" + tool + "@" + a.digests[tool] })
}

// checkPodImages checks every container of every pod spec names want(tool)
// and that the reference resolves in the registry to an index of both
// platforms.
func checkPodImages(t *testing.T, mode string, pods map[string]corev1.PodSpec, want func(tool string) string) {
	t.Helper()
	for _, tool := range imageTools {
		spec, ok := pods[tool]
		if !ok {
			t.Errorf("%s: no %s workload", mode, tool)
			continue
		}
		for _, c := range append(spec.InitContainers, spec.Containers...) {
			if c.Image != want(tool) {
				t.Errorf("%s %s container %s: image %q, want %q", mode, tool, c.Name, c.Image, want(tool))
			}
			ref, err := name.ParseReference(c.Image)
			if err != nil {
				t.Errorf("%s %s: image %q: %v", mode, tool, c.Image, err)
				continue
			}
			idx, err := remote.Index(ref)
			if err != nil {
				t.Errorf("%s %s: %s does not resolve in the registry: %v", mode, tool, c.Image, err)
				continue
			}
			im, err := idx.IndexManifest()
			if err != nil {
				t.Errorf("%s %s: %s: %v", mode, tool, c.Image, err)
				continue
			}
			var got []string
			for _, m := range im.Manifests {
				if m.Platform != nil {
					got = append(got, m.Platform.OS+"/"+m.Platform.Architecture)
				}
			}
			if !slices.Equal(got, platforms) {
				t.Errorf("%s %s: %s has platforms %v, want %v", mode, tool, c.Image, got, platforms)
			}
		}
	}
}

// renderedPods renders the umbrella chart from the working tree with sets and
// returns each tool's pod spec (Deployment or CronJob), by tool.
func renderedPods(t *testing.T, set ...string) (map[string]corev1.PodSpec, error) {
	t.Helper()
	args := []string{"template", "kubehpc", umbrella(t), "--set", "policies.enabled=false"}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	out, err := helm(t, args...)
	if err != nil {
		return nil, err
	}
	pods := map[string]corev1.PodSpec{}
	for _, o := range splitDocs(t, out) {
		var spec corev1.PodSpec
		switch o.GetKind() {
		case "Deployment":
			var d appsv1.Deployment
			fromMap(t, o.m, &d)
			spec = d.Spec.Template.Spec
		case "CronJob":
			var cj batchv1.CronJob
			fromMap(t, o.m, &cj)
			spec = cj.Spec.JobTemplate.Spec.Template.Spec
		default:
			continue
		}
		labels, _ := o.meta()["labels"].(map[string]any)
		tool, _ := labels["app.kubernetes.io/name"].(string)
		pods[tool] = spec
	}
	return pods, nil
}

// fromMap converts a decoded YAML object into a typed one.
func fromMap(t *testing.T, m map[string]any, into any) {
	t.Helper()
	b, err := yaml.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, into); err != nil {
		t.Fatal(err)
	}
}

// TestImageReferences renders the chart's image references and pull
// settings for every tool: the default registry and tag, one global
// registry for all, a per-tool override, digest pinning over the tag, pull
// secrets as names or objects; and the schema's rejection of references a
// runtime could not pull.
func TestImageReferences(t *testing.T) {
	var chart struct {
		AppVersion string `json:"appVersion"`
	}
	b, err := os.ReadFile(filepath.Join(subchart(t, "ldap-configmap"), "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &chart); err != nil || chart.AppVersion == "" {
		t.Fatalf("appVersion of ldap-configmap's Chart.yaml: %q, %v", chart.AppVersion, err)
	}
	const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	cases := []struct {
		name  string
		set   []string
		image func(tool string) string
		// secrets are the pull secret names of every tool but job-pod-reaper's.
		secrets, reaperSecrets []string
	}{
		{name: "defaults", image: func(tool string) string { return "ghcr.io/kubehpc/" + tool + ":" + chart.AppVersion }},
		{name: "global registry", set: []string{"global.imageRegistry=registry.example.org:5000/mirror/kubehpc"},
			image: func(tool string) string {
				return "registry.example.org:5000/mirror/kubehpc/" + tool + ":" + chart.AppVersion
			}},
		{name: "per-tool registry over the global one",
			set: []string{"global.imageRegistry=registry.example.org/kubehpc", "job-pod-reaper.image.registry=other.example.org/x"},
			image: func(tool string) string {
				if tool == "job-pod-reaper" {
					return "other.example.org/x/job-pod-reaper:" + chart.AppVersion
				}
				return "registry.example.org/kubehpc/" + tool + ":" + chart.AppVersion
			}},
		{name: "full repository with its own host (OSC's values)",
			set: []string{"global.imageRegistry=registry.example.org/kubehpc",
				"ldap-configmap.image.repository=quay.io/ohiosupercomputercenter/k8-ldap-configmap",
				"namespace-reaper.image.repository=localhost:5000/kubehpc/namespace-reaper"},
			image: func(tool string) string {
				switch tool {
				case "ldap-configmap":
					return "quay.io/ohiosupercomputercenter/k8-ldap-configmap:" + chart.AppVersion
				case "namespace-reaper":
					return "localhost:5000/kubehpc/namespace-reaper:" + chart.AppVersion
				}
				return "registry.example.org/kubehpc/" + tool + ":" + chart.AppVersion
			}},
		{name: "tag", set: []string{"ldap-configmap.image.tag=v1.2.3"}, image: func(tool string) string {
			if tool == "ldap-configmap" {
				return "ghcr.io/kubehpc/ldap-configmap:v1.2.3"
			}
			return "ghcr.io/kubehpc/" + tool + ":" + chart.AppVersion
		}},
		{name: "digest wins over the tag",
			set: []string{"namespace-reaper.image.tag=v1.2.3", "namespace-reaper.image.digest=" + digest, "namespace-reaper.mode=cronjob"},
			image: func(tool string) string {
				if tool == "namespace-reaper" {
					return "ghcr.io/kubehpc/namespace-reaper@" + digest
				}
				return "ghcr.io/kubehpc/" + tool + ":" + chart.AppVersion
			}},
		{name: "pull secrets: global names and objects, a tool's own over them",
			set:     []string{"global.imagePullSecrets[0]=site-a", "global.imagePullSecrets[1].name=site-b", "job-pod-reaper.imagePullSecrets={own}"},
			image:   func(tool string) string { return "ghcr.io/kubehpc/" + tool + ":" + chart.AppVersion },
			secrets: []string{"site-a", "site-b"}, reaperSecrets: []string{"own"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pods, err := renderedPods(t, tc.set...)
			if err != nil {
				t.Fatal(err)
			}
			for _, tool := range imageTools {
				spec, ok := pods[tool]
				if !ok {
					t.Errorf("%s: no workload rendered", tool)
					continue
				}
				if got := spec.Containers[0].Image; got != tc.image(tool) {
					t.Errorf("%s: image %q, want %q", tool, got, tc.image(tool))
				}
				if got := spec.Containers[0].ImagePullPolicy; got != corev1.PullIfNotPresent {
					t.Errorf("%s: imagePullPolicy %q, want IfNotPresent", tool, got)
				}
				want := tc.secrets
				if tool == "job-pod-reaper" && tc.reaperSecrets != nil {
					want = tc.reaperSecrets
				}
				var got []string
				for _, s := range spec.ImagePullSecrets {
					got = append(got, s.Name)
				}
				if !slices.Equal(got, want) {
					t.Errorf("%s: imagePullSecrets %v, want %v", tool, got, want)
				}
			}
		})
	}

	bad := []struct{ name, set, want string }{
		{"registry with a scheme", "global.imageRegistry=https://registry.example.org", "imageRegistry"},
		{"registry with a trailing slash", "ldap-configmap.image.registry=registry.example.org/", "registry"},
		{"digest that is no sha256", "ldap-configmap.image.digest=latest", "digest"},
		{"short digest", "ldap-configmap.image.digest=sha256:0123", "digest"},
		{"tag with a plus", "job-pod-reaper.image.tag=1.0+build", "tag"},
		{"repository with a tag", "namespace-reaper.image.repository=namespace-reaper:v1", "repository"},
		{"pull secret without a name", "global.imagePullSecrets[0].key=x", "imagePullSecrets"},
		{"unknown pull policy", "namespace-bootstrap.image.pullPolicy=Sometimes", "pullPolicy"},
	}
	for _, tc := range bad {
		t.Run("rejects "+tc.name, func(t *testing.T) {
			if _, err := renderedPods(t, tc.set); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("helm template --set %s: err = %v, want an error about %q", tc.set, err, tc.want)
			}
		})
	}
}
