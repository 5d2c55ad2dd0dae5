package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	authnv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/kubehpc/kubehpc/pkg/app"
	"github.com/kubehpc/kubehpc/pkg/daemon"
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
				Bootstrap: func(context.Context, string) (Result, error) { return Result{User: "alice"}, tt.bootErr }}
			req := httptest.NewRequest(http.MethodPost, BootstrapPath, nil)
			req.Header.Set("Authorization", "Bearer t")
			rr := httptest.NewRecorder()
			s.ServeHTTP(rr, req)
			if rr.Code != tt.want {
				t.Errorf("ServeHTTP() = %d %s, want %d", rr.Code, rr.Body, tt.want)
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
