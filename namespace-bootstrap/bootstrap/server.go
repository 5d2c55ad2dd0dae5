package bootstrap

// The HTTPS server of service mode: binding the address, serving until the
// pass stops, and the server's limits.

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"go.uber.org/zap"
)

// Listen binds the service address (done by Start if not before); a test
// listening on port 0 learns the address from it.
func (p *Pass) Listen() (net.Addr, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln == nil {
		ln, err := net.Listen("tcp", p.cfg.ListenAddress)
		if err != nil {
			return nil, fmt.Errorf("listen for bootstrap HTTPS on %s: %w", p.cfg.ListenAddress, err)
		}
		p.ln = ln
	}
	return p.ln.Addr(), nil
}

// Start serves the HTTPS service until ctx is done (service mode only).
func (p *Pass) Start(ctx context.Context) error {
	if p.service == nil {
		<-ctx.Done()
		return nil
	}
	certs, err := newCertLoader(p.cfg.TLSCertFile, p.cfg.TLSKeyFile)
	if err != nil {
		return err
	}
	if _, err := p.Listen(); err != nil {
		return err
	}
	srv := newServer(p.service, p.cfg.RequestTimeout, &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: certs.GetCertificate})
	return serveTLS(ctx, p.log, srv, p.ln)
}

// Server limits: a client that sends its headers or body slowly, or holds
// an idle connection, is cut off instead of holding a connection forever.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	idleTimeout       = 60 * time.Second
	maxHeaderBytes    = 16 << 10
)

// newServer returns the HTTPS server of service mode with its limits; a
// response may take the request timeout plus a margin.
func newServer(h http.Handler, requestTimeout time.Duration, tlsCfg *tls.Config) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      requestTimeout + 10*time.Second,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		TLSConfig:         tlsCfg,
	}
}

// serveTLS serves on ln with srv.TLSConfig's certificate until ctx is done.
func serveTLS(ctx context.Context, log *zap.Logger, srv *http.Server, ln net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	log.Info("Serving bootstrap HTTPS", zap.String("address", ln.Addr().String()))
	select {
	case err := <-errc:
		return fmt.Errorf("serve HTTPS on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shut down HTTPS: %w", err)
	}
	return nil
}
