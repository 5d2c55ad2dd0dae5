package reaper

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kubehpc/kubehpc/namespace-reaper/promactivity"
)

// fakePrometheus speaks the Prometheus HTTP API's /api/v1/query: the i-th
// request gets answers[min(i, len-1)] (status and body; the body may name
// namespaces with %s, filled from names).
type fakePrometheus struct {
	srv     *httptest.Server
	mu      sync.Mutex
	queries []string
}

type promAnswer struct {
	status int
	body   string
}

func newFakePrometheus(t *testing.T, names func() []any, answers ...promAnswer) *fakePrometheus {
	f := &fakePrometheus{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/query" {
			http.NotFound(w, r)
			return
		}
		f.mu.Lock()
		f.queries = append(f.queries, r.URL.Query().Get("query"))
		a := answers[min(len(f.queries)-1, len(answers)-1)]
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(a.status)
		body := a.body
		if strings.Contains(body, "%s") {
			body = fmt.Sprintf(body, names()...)
		}
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakePrometheus) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.queries...)
}

// TestPrometheus: with --prometheus-address, a namespace Prometheus saw
// active is kept; a failed, empty or non-vector answer aborts the pass with
// nothing deleted; failures are really retried.
func TestPrometheus(t *testing.T) {
	const activeVector = `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"namespace":"%s"},"value":[1,"1700000000"]}]}}`
	unavailable := promAnswer{status: 503, body: `{"status":"error","errorType":"unavailable","error":"starting"}`}
	tests := []struct {
		name         string
		answers      []promAnswer
		wantErr      error // nil and !wantFail: the pass succeeds
		wantFail     bool
		wantRequests int // 0: more than one
	}{
		{name: "active namespace kept, idle one deleted", answers: []promAnswer{{200, activeVector}}, wantRequests: 1},
		{name: "retried until it answers", answers: []promAnswer{unavailable, unavailable, {200, activeVector}}, wantRequests: 3},
		{name: "failing Prometheus deletes nothing", answers: []promAnswer{unavailable}, wantFail: true},
		{name: "empty answer deletes nothing", answers: []promAnswer{{200, `{"status":"success","data":{"resultType":"vector","result":[]}}`}},
			wantErr: promactivity.ErrEmpty, wantRequests: 1},
		{name: "non-vector answer deletes nothing", answers: []promAnswer{{200, `{"status":"success","data":{"resultType":"matrix","result":[]}}`}},
			wantErr: promactivity.ErrNotVector, wantRequests: 1},
		{name: "bad query deletes nothing", answers: []promAnswer{{400, `{"status":"error","errorType":"bad_data","error":"parse error"}`}},
			wantFail: true, wantRequests: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var active, idle string
			prom := newFakePrometheus(t, func() []any { return []any{active} }, tt.answers...)
			h := newHarness(t, harnessOpts{}, func(c *Config) {
				c.Prometheus.Address = prom.srv.URL
				c.Prometheus.RetryTimeout = 300 * time.Millisecond
			})
			active = h.namespace(t, nil)
			idle = h.namespace(t, nil)
			err := h.r.RunOnce(context.Background())
			reqs := prom.requests()
			if got := testutil.ToFloat64(h.r.metrics.promAttempts); int(got) != len(reqs) {
				t.Errorf("prometheus_query_attempts_total = %v, but Prometheus saw %d requests", got, len(reqs))
			}
			switch {
			case tt.wantRequests == 0 && len(reqs) < 2:
				t.Errorf("Prometheus saw %d requests, want retries", len(reqs))
			case tt.wantRequests > 0 && len(reqs) != tt.wantRequests:
				t.Errorf("Prometheus saw %d requests, want %d", len(reqs), tt.wantRequests)
			}
			for _, q := range reqs {
				// The tool's name check anchors the pattern; PromQL's =~ is anchored.
				if !strings.Contains(q, `kube_pod_container_info{namespace=~"user-.+"}`) {
					t.Errorf("query %s does not carry the namespace pattern user-.+", q)
				}
			}
			if tt.wantErr == nil && !tt.wantFail {
				if err != nil {
					t.Fatalf("RunOnce() = %v", err)
				}
				if deletionRequested(t, active) {
					t.Errorf("namespace %s that Prometheus saw active was deleted", active)
				}
				if !deletionRequested(t, idle) {
					t.Errorf("idle namespace %s was kept", idle)
				}
				if got := h.kept(ReasonActivePrometheus); got != 1 {
					t.Errorf("kept{active_prometheus} = %v, want 1", got)
				}
				return
			}
			if err == nil {
				t.Fatal("RunOnce() = nil, want an error")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("RunOnce() = %v, want %v", err, tt.wantErr)
			}
			if got := h.counter.Total(); got != 0 {
				t.Errorf("the pass made %d API requests after a bad Prometheus answer (%s), want 0", got, h.counter)
			}
			for _, ns := range []string{active, idle} {
				if deletionRequested(t, ns) {
					t.Errorf("namespace %s was deleted after a bad Prometheus answer", ns)
				}
			}
			if got := testutil.ToFloat64(h.r.metrics.errors); got != 1 {
				t.Errorf("errors_total = %v, want 1", got)
			}
		})
	}
}
