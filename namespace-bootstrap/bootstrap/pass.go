package bootstrap

// The pass: Build turns the configuration into the Bootstrapper and the
// daemon.Pass of the mode asked for (hook, reconcile, service).

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"sync"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubehpc/kubehpc/namespace-bootstrap/ldapidentity"
	deftemplate "github.com/kubehpc/kubehpc/namespace-bootstrap/template"
	"github.com/kubehpc/kubehpc/pkg/app"
	"github.com/kubehpc/kubehpc/pkg/daemon"
)

// ldapSource adapts the LDAP lookup to IdentitySource.
type ldapSource struct{ s *ldapidentity.Source }

func (l ldapSource) Lookup(ctx context.Context, user string) (map[string]string, error) {
	a, err := l.s.Lookup(ctx, user)
	switch {
	case errors.Is(err, ldapidentity.ErrUserNotFound):
		return nil, fmt.Errorf("%w: %w", ErrUnknownUser, err)
	case errors.Is(err, ldapidentity.ErrCollision):
		return nil, fmt.Errorf("%w: %w", ErrIdentityCollision, err)
	}
	return a, err
}

// NewBootstrapper builds the Bootstrapper from the configuration.
func (c *Config) NewBootstrapper(env app.Env) (*Bootstrapper, error) {
	var fsys fs.FS = deftemplate.FS
	if c.TemplateDir != "" {
		fsys = os.DirFS(c.TemplateDir)
	}
	tmpl, err := LoadTemplate(fsys)
	if err != nil {
		return nil, err
	}
	base, err := c.templateData()
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(env.RESTConfig)
	if err != nil {
		return nil, fmt.Errorf("create dynamic client: %w", err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(env.RESTConfig)
	if err != nil {
		return nil, fmt.Errorf("create discovery client: %w", err)
	}
	b := &Bootstrapper{
		Log: env.Log, Clock: env.Clock, Dynamic: dyn, Mapper: NewMapper(dc), Template: tmpl, Base: base,
		NamespacePrefix: c.NamespacePrefix, UsernamePrefix: c.UsernamePrefix, DryRun: c.DryRun,
		TerminatingTimeout: c.TerminatingTimeout, AllowedGroups: c.AllowedGroups, metrics: newMetrics(env.Registry),
	}
	if c.LDAP.URL != "" {
		s, err := ldapidentity.New(c.LDAP, c.NamespacePrefix)
		if err != nil {
			return nil, err
		}
		b.Identity = ldapSource{s}
	}
	// Fail at start, not at a user's login, on a template that does not
	// render or names a kind this tool refuses.
	if _, _, err := b.render("example", c.NamespacePrefix+"example", nil); err != nil {
		return nil, fmt.Errorf("check template: %w", err)
	}
	return b, nil
}

// Build returns the pass: in hook mode one bootstrap; otherwise a reconcile
// of every managed namespace, with the HTTPS service beside it in service
// mode.
func (c *Config) Build(ctx context.Context, env app.Env) (daemon.Pass, error) {
	if c.User != "" && !env.Daemon.Once {
		return nil, errors.New("--user bootstraps one user and exits: it cannot be combined with --once=false")
	}
	if c.ListenAddress != "" && env.Daemon.Once {
		return nil, errors.New("--listen-address (service mode) runs until stopped: it cannot be combined with --once")
	}
	b, err := c.NewBootstrapper(env)
	if err != nil {
		return nil, err
	}
	// app.Run chose the recorder: synchronous in hook mode and with --once,
	// so the Events are written before the process exits.
	b.Recorder = env.EventRecorder(Tool)
	p := &Pass{cfg: c, b: b, log: env.Log}
	if ns, name := os.Getenv("POD_NAMESPACE"), os.Getenv("POD_NAME"); ns != "" && name != "" {
		b.Self = &corev1.ObjectReference{APIVersion: "v1", Kind: "Pod", Namespace: ns, Name: name}
	}
	if c.ListenAddress != "" {
		// TokenReviews go through a client of their own: a flood of bad
		// tokens waits on its rate limiter, not on the one that writes
		// users' namespaces.
		rc := rest.CopyConfig(env.RESTConfig)
		rc.QPS, rc.Burst, rc.RateLimiter = c.TokenReviewQPS, c.TokenReviewBurst, nil
		reviews, err := kubernetes.NewForConfig(rc)
		if err != nil {
			return nil, fmt.Errorf("create TokenReview client: %w", err)
		}
		p.service = &Service{
			Log: env.Log.Named("service"), Clock: env.Clock, TokenReview: reviews.AuthenticationV1().TokenReviews(),
			Bootstrap: b.BootstrapLogin, UsernamePrefix: c.UsernamePrefix, Audiences: c.TokenAudiences,
			Limiter: NewUserLimiter(c.RateLimit, c.RateBurst), ClientLimiter: NewUserLimiter(c.ClientRateLimit, c.ClientRateBurst),
			Timeout: c.RequestTimeout, metrics: b.metrics,
		}
	}
	return p, nil
}

// Pass is the tool's daemon.Pass (and daemon.Starter for the service).
type Pass struct {
	cfg     *Config
	b       *Bootstrapper
	log     *zap.Logger
	service *Service

	mu sync.Mutex
	ln net.Listener
}

// Bootstrapper returns the pass's bootstrapper.
func (p *Pass) Bootstrapper() *Bootstrapper { return p.b }

// RunOnce bootstraps the --user (hook mode) or reconciles every managed
// namespace.
func (p *Pass) RunOnce(ctx context.Context) error {
	if p.cfg.User != "" {
		if _, err := p.b.Bootstrap(ctx, p.cfg.User); err != nil {
			return fmt.Errorf("bootstrap user %q: %w", p.cfg.User, err)
		}
		return nil
	}
	if !p.cfg.Reconcile {
		return nil
	}
	return p.b.Reconcile(ctx, p.cfg.ReconcileWorkers)
}
