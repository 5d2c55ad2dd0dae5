package bootstrap

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kubehpc/kubehpc/pkg/testenv"
)

// TestCertLoaderReloads proves a renewed certificate is served without a
// restart, and a half-written one does not break the service.
func TestCertLoaderReloads(t *testing.T) {
	dir := t.TempDir()
	ca, err := testenv.NewCA("reload")
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	write := func(cn string, mtime time.Time) {
		c, k, err := ca.Issue(cn)
		if err != nil {
			t.Fatal(err)
		}
		for f, b := range map[string][]byte{certFile: c, keyFile: k} {
			if err := os.WriteFile(f, b, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(f, mtime, mtime); err != nil {
				t.Fatal(err)
			}
		}
	}
	cn := func(l *certLoader) string {
		c, err := l.GetCertificate(&tls.ClientHelloInfo{})
		if err != nil {
			t.Fatal(err)
		}
		return c.Leaf.Subject.CommonName
	}
	t0 := time.Unix(1_800_000_000, 0)
	write("first", t0)
	l, err := newCertLoader(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if got := cn(l); got != "first" {
		t.Fatalf("certificate = %s, want first", got)
	}
	write("second", t0.Add(time.Hour))
	if got := cn(l); got != "second" {
		t.Errorf("after renewal certificate = %s, want second", got)
	}
	if err := os.WriteFile(certFile, []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(certFile, t0.Add(2*time.Hour), t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := cn(l); got != "second" {
		t.Errorf("with a half-written file certificate = %s, want the previous one", got)
	}
	if _, err := newCertLoader(filepath.Join(dir, "missing"), keyFile); err == nil {
		t.Error("newCertLoader(missing file) = nil error")
	}
}
