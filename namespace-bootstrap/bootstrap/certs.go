package bootstrap

import (
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"time"
)

// certLoader serves the certificate in certFile/keyFile and reloads it when
// either file changes (cert-manager renews the Secret in place), so the
// service never serves an expired certificate until a restart.
type certLoader struct {
	certFile, keyFile string

	mu      sync.Mutex
	cert    *tls.Certificate
	modTime time.Time
}

func newCertLoader(certFile, keyFile string) (*certLoader, error) {
	l := &certLoader{certFile: certFile, keyFile: keyFile}
	if _, err := l.get(); err != nil {
		return nil, err
	}
	return l, nil
}

// get returns the current certificate, reloading it if a file changed. A
// pair that does not load (half-written) keeps the previous certificate.
func (l *certLoader) get() (*tls.Certificate, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var latest time.Time
	for _, f := range []string{l.certFile, l.keyFile} {
		st, err := os.Stat(f)
		if err != nil {
			if l.cert != nil {
				return l.cert, nil
			}
			return nil, fmt.Errorf("read TLS certificate: %w", err)
		}
		if st.ModTime().After(latest) {
			latest = st.ModTime()
		}
	}
	if l.cert != nil && latest.Equal(l.modTime) {
		return l.cert, nil
	}
	cert, err := tls.LoadX509KeyPair(l.certFile, l.keyFile)
	if err != nil {
		if l.cert != nil {
			return l.cert, nil
		}
		return nil, fmt.Errorf("load TLS certificate %s and key %s: %w", l.certFile, l.keyFile, err)
	}
	l.cert, l.modTime = &cert, latest
	return l.cert, nil
}

// GetCertificate is tls.Config.GetCertificate.
func (l *certLoader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) { return l.get() }
