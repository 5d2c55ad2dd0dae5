package promactivity

import (
	"context"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"k8s.io/utils/clock"
)

const vectorBody = `{"status":"success","data":{"resultType":"vector","result":[
 {"metric":{"namespace":"user-a"},"value":[1700000000.5,"1699990000"]},
 {"metric":{"namespace":"user-b"},"value":[1700000000.5,"1699000000"]}]}}`

// fakeProm is an httptest server speaking the Prometheus HTTP API: it
// answers the i-th /api/v1/query request with answers[min(i, len-1)].
type fakeProm struct {
	srv      *httptest.Server
	requests atomic.Int32
	queries  chan string
	auth     atomic.Value
}

type answer struct {
	status int
	body   string
	hang   bool // block until the request is cancelled
}

func newFakeProm(t *testing.T, answers ...answer) *fakeProm {
	f := &fakeProm{queries: make(chan string, 100)}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/query" {
			http.NotFound(w, r)
			return
		}
		i := int(f.requests.Add(1)) - 1
		f.auth.Store(r.Header.Get("Authorization"))
		select {
		case f.queries <- r.URL.Query().Get("query"):
		default:
		}
		a := answers[min(i, len(answers)-1)]
		if a.hang {
			<-r.Context().Done()
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(a.status)
		_, _ = w.Write([]byte(a.body))
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func newClient(t *testing.T, o Options) *Client {
	t.Helper()
	if o.Timeout == 0 {
		o.Timeout = 2 * time.Second
	}
	if o.RetryInterval == 0 {
		o.RetryInterval = 5 * time.Millisecond
	}
	c, err := New(o, clock.RealClock{}, zap.NewNop())
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	return c
}

func TestActiveNamespaces(t *testing.T) {
	ok := answer{status: 200, body: vectorBody}
	tests := []struct {
		name         string
		answers      []answer
		retryTimeout time.Duration
		timeout      time.Duration
		wantErr      error // nil: success
		wantAnyErr   bool
		wantAttempts int // 0: more than one
	}{
		{name: "vector", answers: []answer{ok}, retryTimeout: time.Second, wantAttempts: 1},
		{name: "empty vector aborts", answers: []answer{{status: 200, body: `{"status":"success","data":{"resultType":"vector","result":[]}}`}},
			retryTimeout: time.Second, wantErr: ErrEmpty, wantAttempts: 1},
		{name: "series without namespace label count as empty", answers: []answer{{status: 200,
			body: `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"1"]}]}}`}},
			retryTimeout: time.Second, wantErr: ErrEmpty, wantAttempts: 1},
		{name: "matrix is not a vector", answers: []answer{{status: 200, body: `{"status":"success","data":{"resultType":"matrix","result":[]}}`}},
			retryTimeout: time.Second, wantErr: ErrNotVector, wantAttempts: 1},
		{name: "scalar is not a vector", answers: []answer{{status: 200, body: `{"status":"success","data":{"resultType":"scalar","result":[1,"1"]}}`}},
			retryTimeout: time.Second, wantErr: ErrNotVector, wantAttempts: 1},
		{name: "bad query is not retried", answers: []answer{{status: 400, body: `{"status":"error","errorType":"bad_data","error":"parse error"}`}},
			retryTimeout: time.Second, wantAnyErr: true, wantAttempts: 1},
		{name: "not JSON", answers: []answer{{status: 200, body: `<html>`}}, retryTimeout: time.Second, wantAnyErr: true, wantAttempts: 1},
		{name: "503 twice then success: retried", answers: []answer{{status: 503, body: `{"status":"error","errorType":"unavailable"}`},
			{status: 503, body: ``}, ok}, retryTimeout: 5 * time.Second, wantAttempts: 3},
		{name: "always 500: gives up", answers: []answer{{status: 500, body: `{"status":"error","errorType":"internal","error":"boom"}`}},
			retryTimeout: 100 * time.Millisecond, wantAnyErr: true},
		{name: "no retry budget: one attempt", answers: []answer{{status: 500, body: ``}}, wantAnyErr: true, wantAttempts: 1},
		{name: "a timed-out attempt is retried with a fresh timeout", answers: []answer{{hang: true}, ok},
			retryTimeout: 5 * time.Second, timeout: 100 * time.Millisecond, wantAttempts: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeProm(t, tt.answers...)
			c := newClient(t, Options{Address: f.srv.URL, RetryTimeout: tt.retryTimeout, Timeout: tt.timeout})
			res, err := c.ActiveNamespaces(context.Background(), Query("user-.+", 168*time.Hour))
			if got := int(f.requests.Load()); got != res.Attempts {
				t.Errorf("Attempts = %d, but the server saw %d requests", res.Attempts, got)
			}
			switch {
			case tt.wantAttempts == 0 && res.Attempts < 2:
				t.Errorf("Attempts = %d, want retries", res.Attempts)
			case tt.wantAttempts > 0 && res.Attempts != tt.wantAttempts:
				t.Errorf("Attempts = %d, want %d", res.Attempts, tt.wantAttempts)
			}
			if tt.wantErr == nil && !tt.wantAnyErr {
				if err != nil {
					t.Fatalf("ActiveNamespaces() = %v", err)
				}
				if len(res.Active) != 2 || !res.Active["user-a"].Equal(time.Unix(1699990000, 0)) {
					t.Errorf("ActiveNamespaces() = %v, want user-a at 1699990000 and user-b", res.Active)
				}
				return
			}
			if err == nil {
				t.Fatalf("ActiveNamespaces() = %v, nil, want an error", res.Active)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("ActiveNamespaces() = %v, want %v", err, tt.wantErr)
			}
			if res.Active != nil {
				t.Errorf("ActiveNamespaces() returned namespaces %v with an error", res.Active)
			}
		})
	}
}

func TestBearerToken(t *testing.T) {
	f := newFakeProm(t, answer{status: 200, body: vectorBody})
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, Options{Address: f.srv.URL + "/", BearerTokenFile: file})
	if _, err := c.ActiveNamespaces(context.Background(), "up"); err != nil {
		t.Fatal(err)
	}
	if got := f.auth.Load(); got != "Bearer s3cret" {
		t.Errorf("Authorization = %q, want %q", got, "Bearer s3cret")
	}
}

func TestCAFile(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(vectorBody)) }))
	defer srv.Close()
	pemFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(pemFile, certPEM(srv), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := newClient(t, Options{Address: srv.URL}).ActiveNamespaces(context.Background(), "up"); err == nil {
		t.Error("query without the CA succeeded, want a certificate error")
	}
	if _, err := newClient(t, Options{Address: srv.URL, CAFile: pemFile}).ActiveNamespaces(context.Background(), "up"); err != nil {
		t.Errorf("query with --prometheus-ca-file: %v", err)
	}
}

func TestQuery(t *testing.T) {
	tests := []struct {
		pattern string
		window  time.Duration
		want    string
	}{
		{"user-.+", 168 * time.Hour, `max(max_over_time(timestamp(kube_pod_container_info{namespace=~"user-.+"})[1w:5m])) by (namespace)`},
		{`user-\d+`, 8 * time.Hour, `max(max_over_time(timestamp(kube_pod_container_info{namespace=~"user-\\d+"})[8h:5m])) by (namespace)`},
		{"", 90 * time.Minute, `max(max_over_time(timestamp(kube_pod_container_info)[1h30m:5m])) by (namespace)`},
	}
	for _, tt := range tests {
		if got := Query(tt.pattern, tt.window); got != tt.want {
			t.Errorf("Query(%q, %v) = %s, want %s", tt.pattern, tt.window, got, tt.want)
		}
	}
	if !strings.Contains(Query(`a"b`, time.Hour), `"a\"b"`) {
		t.Errorf("Query does not escape quotes: %s", Query(`a"b`, time.Hour))
	}
}

func certPEM(srv *httptest.Server) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
}
