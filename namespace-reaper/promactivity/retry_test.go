package promactivity

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/zap"
	"k8s.io/utils/clock"
)

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestRetryBudget runs the defaults (30s per attempt, every 5s for 5m) in
// a synctest bubble: retries go on for the whole budget, each attempt with
// its own timeout (OSC's single 30s context cut retries to ~30s).
func TestRetryBudget(t *testing.T) {
	tests := []struct {
		name         string
		rt           roundTripper
		wantAttempts int
	}{
		{
			name: "503 every time",
			rt: func(*http.Request) (*http.Response, error) {
				return &http.Response{StatusCode: 503, Status: "503 Service Unavailable", Body: io.NopCloser(strings.NewReader(""))}, nil
			},
			// at 0s, 5s, …, 300s
			wantAttempts: 61,
		},
		{
			name: "hangs every time",
			rt: func(r *http.Request) (*http.Response, error) {
				<-r.Context().Done()
				return nil, r.Context().Err()
			},
			// at 0s, 35s, …, 280s (each attempt times out after 30s)
			wantAttempts: 9,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c, err := New(Options{Address: "http://prometheus:9090", Timeout: 30 * time.Second, RetryTimeout: 5 * time.Minute,
					RetryInterval: 5 * time.Second}, clock.RealClock{}, zap.NewNop())
				if err != nil {
					t.Fatal(err)
				}
				c.http.Transport = tt.rt
				start := time.Now()
				res, err := c.ActiveNamespaces(context.Background(), "up")
				if err == nil {
					t.Fatal("ActiveNamespaces() = nil error, want one")
				}
				if res.Attempts != tt.wantAttempts {
					t.Errorf("Attempts = %d, want %d (%v)", res.Attempts, tt.wantAttempts, err)
				}
				if took := time.Since(start); took > 5*time.Minute+30*time.Second {
					t.Errorf("gave up after %v, want within the 5m budget plus one attempt", took)
				}
			})
		})
	}
}
