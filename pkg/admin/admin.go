// Package admin serves a tool's /metrics, /healthz and /readyz, and, when
// asked, Go's /debug/pprof profiles.
package admin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// Server is the admin HTTP server.
type Server struct {
	// Addr to listen on, e.g. ":8080" or "127.0.0.1:0".
	Addr string
	// Gatherer serves /metrics (the tool's private registry).
	Gatherer prometheus.Gatherer
	// Ready returns nil when the tool is ready; its error is /readyz's body.
	Ready func() error
	Log   *zap.Logger
	// Pprof also serves /debug/pprof/ (net/http/pprof): heap, goroutine,
	// CPU profiles. Off unless set: profiles reveal the process's memory.
	Pprof bool
}

// Listen binds the address and returns the listener, so a caller (or a test
// using port 0) knows the real address before Serve.
func (s *Server) Listen() (net.Listener, error) {
	ln, err := net.Listen("tcp", s.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen for admin HTTP on %s: %w", s.Addr, err)
	}
	return ln, nil
}

// Handler returns the mux with /metrics, /healthz and /readyz.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(s.Gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if s.Ready != nil {
			if err := s.Ready(); err != nil {
				http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	if s.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// Serve serves on ln until ctx is done, then shuts down within 5 seconds.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	if s.Pprof {
		s.Log.Warn("Serving /debug/pprof on the admin address")
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.Log.Info("Serving admin HTTP", zap.String("address", ln.Addr().String()))
	select {
	case err := <-errc:
		return fmt.Errorf("serve admin HTTP on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shut down admin HTTP: %w", err)
	}
	return nil
}
