package bootstrap

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"
	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	authnclient "k8s.io/client-go/kubernetes/typed/authentication/v1"
	"k8s.io/utils/clock"

	"github.com/kubehpc/kubehpc/pkg/naming"
)

// BootstrapPath is the service's endpoint: POST with the user's own token
// as "Authorization: Bearer <token>", and optionally ?user=<name>, which must
// then be the token's user.
const BootstrapPath = "/bootstrap"

// Service is the HTTPS handler of service mode. It authenticates the
// caller's token with a TokenReview and bootstraps that user only.
type Service struct {
	Log         *zap.Logger
	Clock       clock.PassiveClock
	TokenReview authnclient.TokenReviewInterface
	Bootstrap   func(ctx context.Context, login Login) (Result, error)
	// UsernamePrefix is the API server's OIDC username prefix: stripped from
	// the reviewed username, and required when set.
	UsernamePrefix string
	// Audiences are passed to the TokenReview (empty: the API server's).
	Audiences []string
	// Limiter is the per-user rate limit; nil means none.
	Limiter *UserLimiter
	// ClientLimiter is the per-client (remote address) rate limit, checked
	// before anything costs the API server a TokenReview; nil means none.
	ClientLimiter *UserLimiter
	// Timeout bounds one request's work.
	Timeout time.Duration
	metrics *metrics
}

type errorBody struct {
	Error string `json:"error"`
}

func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	code := s.serve(w, r)
	if s.metrics != nil {
		s.metrics.requests.WithLabelValues(strconv.Itoa(code)).Inc()
	}
}

func (s *Service) serve(w http.ResponseWriter, r *http.Request) int {
	if r.URL.Path != BootstrapPath {
		return reply(w, http.StatusNotFound, errorBody{"not found; POST " + BootstrapPath})
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return reply(w, http.StatusMethodNotAllowed, errorBody{"use POST"})
	}
	if r.ContentLength > MaxBodyBytes {
		return reply(w, http.StatusRequestEntityTooLarge, errorBody{"request body too large"})
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	if s.ClientLimiter != nil && !s.ClientLimiter.Allow(clientAddress(r), s.Clock.Now()) {
		if s.metrics != nil {
			s.metrics.clientLimited.Inc()
		}
		w.Header().Set("Retry-After", strconv.Itoa(int(s.ClientLimiter.RetryAfter().Seconds()+0.5)))
		return reply(w, http.StatusTooManyRequests, errorBody{"too many requests from this address; retry later"})
	}
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	token = strings.TrimSpace(token)
	if !ok || token == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="namespace-bootstrap"`)
		return reply(w, http.StatusUnauthorized, errorBody{"missing bearer token"})
	}
	ctx := r.Context()
	if s.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.Timeout)
		defer cancel()
	}
	review, err := s.TokenReview.Create(ctx, &authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: token, Audiences: s.Audiences}}, metav1.CreateOptions{})
	if err != nil {
		s.Log.Error("Failed to review token", zap.Error(err))
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterTemporary))
		return reply(w, http.StatusServiceUnavailable, errorBody{"cannot authenticate now"})
	}
	if !review.Status.Authenticated {
		w.Header().Set("WWW-Authenticate", `Bearer realm="namespace-bootstrap", error="invalid_token"`)
		s.Log.Info("Refused invalid token", zap.String("remote", r.RemoteAddr))
		return reply(w, http.StatusUnauthorized, errorBody{"invalid token"})
	}
	kubeUser := review.Status.User.Username
	user, err := s.portalUser(kubeUser)
	if err != nil {
		s.Log.Info("Refused token", zap.String("kubeUser", kubeUser), zap.Error(err))
		return reply(w, http.StatusForbidden, errorBody{err.Error()})
	}
	if want := r.URL.Query().Get("user"); want != "" && want != user {
		s.Log.Warn("Refused request for another user", zap.String("user", user), zap.String("requested", want))
		return reply(w, http.StatusForbidden, errorBody{fmt.Sprintf("the token is %q's, not %q's", user, want)})
	}
	if s.Limiter != nil && !s.Limiter.Allow(user, s.Clock.Now()) {
		if s.metrics != nil {
			s.metrics.rateLimited.Inc()
		}
		w.Header().Set("Retry-After", strconv.Itoa(int(s.Limiter.RetryAfter().Seconds()+0.5)))
		return reply(w, http.StatusTooManyRequests, errorBody{"too many bootstraps for this user; retry later"})
	}
	res, err := s.Bootstrap(ctx, Login{User: user, Groups: review.Status.User.Groups})
	switch {
	case err == nil:
		return reply(w, http.StatusOK, res)
	case IsTemporary(err):
		s.Log.Warn("Failed to bootstrap user: temporary failure", zap.String("user", user), zap.Error(err))
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterTemporary))
		return reply(w, http.StatusServiceUnavailable, errorBody{"the cluster or the directory is not answering now; retry shortly"})
	case errors.Is(err, ErrTerminatingTimeout):
		s.Log.Warn("Failed to bootstrap user: namespace still Terminating", zap.String("user", user), zap.Error(err))
		w.Header().Set("Retry-After", "30")
		return reply(w, http.StatusServiceUnavailable, errorBody{"your namespace is still being deleted; retry shortly"})
	case IsRefusal(err):
		s.Log.Info("Refused bootstrap", zap.String("user", user), zap.Error(err))
		return reply(w, http.StatusForbidden, errorBody{err.Error()})
	default:
		s.Log.Error("Failed to bootstrap user", zap.String("user", user), zap.Error(err))
		return reply(w, http.StatusInternalServerError, errorBody{"bootstrap failed; see the service's log"})
	}
}

// MaxBodyBytes bounds a request's body: the service needs none.
const MaxBodyBytes = 4096

// retryAfterTemporary is the Retry-After, in seconds, of a 503 for a
// temporary failure of the API server or LDAP.
const retryAfterTemporary = 5

// clientAddress is the host part of the request's remote address.
func clientAddress(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// portalUser maps the authenticated Kubernetes username back to the portal
// username: the OIDC prefix must be there and is removed; service accounts
// and system users are refused.
func (s *Service) portalUser(kubeUser string) (string, error) {
	user, ok := strings.CutPrefix(kubeUser, s.UsernamePrefix)
	if !ok {
		return "", fmt.Errorf("user %q is not a portal user (no %q prefix)", kubeUser, s.UsernamePrefix)
	}
	if strings.HasPrefix(kubeUser, "system:") || user == "" {
		return "", fmt.Errorf("user %q is not a portal user", kubeUser)
	}
	if _, err := naming.NamespaceForUser("", user); err != nil {
		return "", err
	}
	return user, nil
}

func reply(w http.ResponseWriter, code int, body any) int {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(body)
	return code
}

// UserLimiter is a token bucket per user. Buckets idle for longer than it
// takes to refill are forgotten.
type UserLimiter struct {
	limit rate.Limit
	burst int
	mu    sync.Mutex
	users map[string]*userBucket
}

type userBucket struct {
	l    *rate.Limiter
	last time.Time
}

// NewUserLimiter allows each user perMinute bootstraps a minute, with burst.
func NewUserLimiter(perMinute float64, burst int) *UserLimiter {
	return &UserLimiter{limit: rate.Limit(perMinute / 60), burst: burst, users: map[string]*userBucket{}}
}

// Allow takes a token from user's bucket at now.
func (l *UserLimiter) Allow(user string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.users) > 10000 {
		full := time.Duration(float64(l.burst) / float64(l.limit) * float64(time.Second))
		for u, b := range l.users {
			if now.Sub(b.last) > full {
				delete(l.users, u)
			}
		}
	}
	b, ok := l.users[user]
	if !ok {
		b = &userBucket{l: rate.NewLimiter(l.limit, l.burst)}
		l.users[user] = b
	}
	b.last = now
	return b.l.AllowN(now, 1)
}

// RetryAfter is the time one token takes to come back.
func (l *UserLimiter) RetryAfter() time.Duration {
	if l.limit <= 0 {
		return time.Minute
	}
	return time.Duration(float64(time.Second) / float64(l.limit))
}
