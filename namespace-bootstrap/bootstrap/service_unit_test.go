package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	authnv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/kubehpc/kubehpc/pkg/app"
	"github.com/kubehpc/kubehpc/pkg/daemon"
	"github.com/kubehpc/kubehpc/pkg/identity"
)

// TestServiceStatusCodes covers the answers the integration test cannot
// provoke: the TokenReview failing, a namespace stuck Terminating, and a
// failed bootstrap.
func TestServiceStatusCodes(t *testing.T) {
	tests := []struct {
		name      string
		reviewErr error
		bootErr   error
		want      int
	}{
		{name: "TokenReview fails", reviewErr: errors.New("apiserver down"), want: http.StatusServiceUnavailable},
		{name: "still Terminating", bootErr: fmt.Errorf("%w: x", ErrTerminatingTimeout), want: http.StatusServiceUnavailable},
		{name: "bootstrap fails", bootErr: errors.New("etcd full"), want: http.StatusInternalServerError},
		{name: "foreign namespace", bootErr: fmt.Errorf("%w: x", ErrForeignNamespace), want: http.StatusForbidden},
		{name: "name collision", bootErr: fmt.Errorf("%w: x", ErrIdentityCollision), want: http.StatusForbidden},
		{name: "not in an allowed group", bootErr: fmt.Errorf("%w: x", ErrNotAllowed), want: http.StatusForbidden},
		{name: "API server unavailable", bootErr: fmt.Errorf("apply RoleBinding x: %w", apierrors.NewServiceUnavailable("etcd")), want: http.StatusServiceUnavailable},
		{name: "API server timeout", bootErr: apierrors.NewServerTimeout(schema.GroupResource{Resource: "namespaces"}, "get", 1), want: http.StatusServiceUnavailable},
		{name: "too many requests", bootErr: apierrors.NewTooManyRequests("slow down", 1), want: http.StatusServiceUnavailable},
		{name: "connection refused", bootErr: fmt.Errorf("get Namespace x: %w", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}), want: http.StatusServiceUnavailable},
		{name: "ok", want: http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := fake.NewClientset()
			cs.PrependReactor("create", "tokenreviews", func(k8stesting.Action) (bool, runtime.Object, error) {
				if tt.reviewErr != nil {
					return true, nil, tt.reviewErr
				}
				return true, &authnv1.TokenReview{Status: authnv1.TokenReviewStatus{Authenticated: true, User: authnv1.UserInfo{Username: "alice"}}}, nil
			})
			s := &Service{Log: zap.NewNop(), Clock: clocktesting.NewFakeClock(time.Unix(0, 0)), TokenReview: cs.AuthenticationV1().TokenReviews(),
				Bootstrap: func(context.Context, Login) (Result, error) { return Result{User: "alice"}, tt.bootErr }}
			req := httptest.NewRequest(http.MethodPost, BootstrapPath, nil)
			req.Header.Set("Authorization", "Bearer t")
			rr := httptest.NewRecorder()
			s.ServeHTTP(rr, req)
			if rr.Code != tt.want {
				t.Errorf("ServeHTTP() = %d %s, want %d", rr.Code, rr.Body, tt.want)
			}
			if rr.Code == http.StatusServiceUnavailable && rr.Header().Get("Retry-After") == "" {
				t.Errorf("ServeHTTP() = 503 without Retry-After")
			}
		})
	}
}

// TestServiceClientRateLimit proves a flood of requests from one address is
// refused before it costs the API server a TokenReview, while another
// address still gets through, and that bodies and headers are bounded.
func TestServiceClientRateLimit(t *testing.T) {
	cs := fake.NewClientset()
	var reviews atomic.Int64
	cs.PrependReactor("create", "tokenreviews", func(k8stesting.Action) (bool, runtime.Object, error) {
		reviews.Add(1)
		return true, &authnv1.TokenReview{Status: authnv1.TokenReviewStatus{Authenticated: false}}, nil
	})
	s := &Service{Log: zap.NewNop(), Clock: clocktesting.NewFakeClock(time.Unix(0, 0)), TokenReview: cs.AuthenticationV1().TokenReviews(),
		ClientLimiter: NewUserLimiter(60, 5), metrics: newMetrics(prometheus.NewRegistry()),
		Bootstrap: func(context.Context, Login) (Result, error) { return Result{}, nil }}
	post := func(remote string, body io.Reader, header string) int {
		req := httptest.NewRequest(http.MethodPost, BootstrapPath, body)
		req.RemoteAddr = remote
		req.Header.Set("Authorization", "Bearer garbage"+header)
		rr := httptest.NewRecorder()
		s.ServeHTTP(rr, req)
		return rr.Code
	}
	codes := map[int]int{}
	for range 600 {
		codes[post("192.0.2.66:40000", nil, "")]++
	}
	if codes[http.StatusUnauthorized] != 5 || codes[http.StatusTooManyRequests] != 595 {
		t.Errorf("600 garbage tokens from one address: codes %v, want 5 × 401 then 595 × 429", codes)
	}
	if n := reviews.Load(); n != 5 {
		t.Errorf("TokenReviews sent = %d, want 5 (the rest refused before review)", n)
	}
	if got := testutil.ToFloat64(s.metrics.clientLimited); got != 595 {
		t.Errorf("client_rate_limited_total = %v, want 595", got)
	}
	if code := post("192.0.2.10:40000", nil, ""); code != http.StatusUnauthorized {
		t.Errorf("another address = %d, want 401 (reviewed, not limited)", code)
	}
	if code := post("192.0.2.11:40000", strings.NewReader(strings.Repeat("x", MaxBodyBytes+1)), ""); code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body = %d, want 413", code)
	}
	srv := newServer(s, time.Minute, nil)
	if srv.ReadTimeout <= 0 || srv.ReadHeaderTimeout <= 0 || srv.WriteTimeout <= time.Minute || srv.IdleTimeout <= 0 || srv.MaxHeaderBytes <= 0 {
		t.Errorf("server limits = read %v, header %v, write %v, idle %v, header bytes %d; want all set",
			srv.ReadTimeout, srv.ReadHeaderTimeout, srv.WriteTimeout, srv.IdleTimeout, srv.MaxHeaderBytes)
	}
}

// TestAllowedGroups covers the login gate: token groups or LDAP groups.
func TestAllowedGroups(t *testing.T) {
	b := &Bootstrapper{AllowedGroups: []string{"oidc:hpc", "pzs0001"}}
	tests := []struct {
		name   string
		login  Login
		ident  map[string]string
		wantOK bool
	}{
		{name: "token group", login: Login{User: "a", Groups: []string{"system:authenticated", "oidc:hpc"}}, wantOK: true},
		{name: "LDAP group", login: Login{User: "a"}, ident: map[string]string{identity.GroupsAnnotation: ",a,pzs0001,"}, wantOK: true},
		{name: "neither", login: Login{User: "a", Groups: []string{"hpc"}}, ident: map[string]string{identity.GroupsAnnotation: ",a,pzs0002,"}},
		{name: "no identity", login: Login{User: "a"}},
		{name: "substring is not membership", login: Login{User: "a"}, ident: map[string]string{identity.GroupsAnnotation: ",pzs00010,"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := b.checkAllowed(tt.login, tt.ident)
			if tt.wantOK != (err == nil) || (err != nil && !errors.Is(err, ErrNotAllowed)) {
				t.Errorf("checkAllowed(%+v, %v) = %v, want allowed %v", tt.login, tt.ident, err, tt.wantOK)
			}
		})
	}
}

// TestBuildModeErrors: hook and service mode each refuse the run mode that
// would not work.
func TestBuildModeErrors(t *testing.T) {
	tests := []struct {
		name string
		c    Config
		once bool
		want string
	}{
		{name: "hook without once", c: Config{User: "alice"}, want: "cannot be combined with --once=false"},
		{name: "service with once", c: Config{ListenAddress: ":8443"}, once: true, want: "cannot be combined with --once"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.c.Build(context.Background(), app.Env{Daemon: daemon.Options{Once: tt.once}})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Build() = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestUserLimiter(t *testing.T) {
	l := NewUserLimiter(6, 2) // one every 10 s, burst 2
	now := time.Unix(0, 0)
	steps := []struct {
		at   time.Duration
		user string
		want bool
	}{
		{0, "alice", true}, {0, "alice", true}, {0, "alice", false}, {0, "bob", true},
		{9 * time.Second, "alice", false}, {10 * time.Second, "alice", true}, {10 * time.Second, "alice", false},
	}
	for i, s := range steps {
		if got := l.Allow(s.user, now.Add(s.at)); got != s.want {
			t.Errorf("step %d: Allow(%s, +%v) = %v, want %v", i, s.user, s.at, got, s.want)
		}
	}
	if got := l.RetryAfter(); got != 10*time.Second {
		t.Errorf("RetryAfter() = %v, want 10s", got)
	}
}

func TestPortalUser(t *testing.T) {
	tests := []struct {
		prefix, kubeUser, want string
		wantErr                bool
	}{
		{"", "alice", "alice", false},
		{"oidc:", "oidc:John.Smith", "John.Smith", false},
		{"oidc:", "alice", "", true},
		{"", "system:serviceaccount:ns:sa", "", true},
		{"", "system:admin", "", true},
		{"oidc:", "oidc:", "", true},
		{"", "bad_name", "", true},
	}
	for _, tt := range tests {
		s := &Service{UsernamePrefix: tt.prefix}
		got, err := s.portalUser(tt.kubeUser)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("portalUser(%q) with prefix %q = %q, %v; want %q, err %v", tt.kubeUser, tt.prefix, got, err, tt.want, tt.wantErr)
		}
	}
}
