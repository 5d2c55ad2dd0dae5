package daemon

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/robfig/cron/v3"
	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/utils/clock"

	"github.com/kubehpc/kubehpc/pkg/admin"
)

// Pass is one unit of a tool's work.
type Pass interface {
	RunOnce(ctx context.Context) error
}

// PassFunc adapts a function to Pass.
type PassFunc func(ctx context.Context) error

// RunOnce calls f.
func (f PassFunc) RunOnce(ctx context.Context) error { return f(ctx) }

// Starter is implemented by a Pass that also has long-running work (informers,
// timers) that must run only while this replica acts. Start blocks until ctx
// is done; the loop runs passes beside it.
type Starter interface {
	Start(ctx context.Context) error
}

// Deps are what Run needs from main.
type Deps struct {
	// MetricsNamespace prefixes the common metrics, e.g. "job_pod_reaper".
	MetricsNamespace string
	Version          string
	Log              *zap.Logger
	Clock            clock.Clock
	// Registry receives the common metrics and is served on /metrics.
	Registry *prometheus.Registry
	// Client is used for leader election only.
	Client kubernetes.Interface
	// Rand returns a float in [0,1) for jitter; nil means math/rand/v2.
	Rand func() float64
}

// ErrLostLeadership is returned when this replica stops holding the Lease; the
// process should exit so that it restarts as a candidate.
var ErrLostLeadership = errors.New("lost leadership")

// Runner runs passes. Build it with New, then call Run.
type Runner struct {
	opts     Options
	deps     Deps
	pass     Pass
	metrics  *metrics
	schedule cron.Schedule

	mu          sync.Mutex
	lastSuccess time.Time
	lastErr     error
	standby     bool
	apiFailures int
	apiErr      error
}

// New validates o and registers the common metrics.
func New(o Options, d Deps, p Pass) (*Runner, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if d.Log == nil || d.Clock == nil || d.Registry == nil {
		return nil, errors.New("daemon: Log, Clock and Registry are required")
	}
	if o.LeaderElection.Enabled && !o.Once && d.Client == nil {
		return nil, errors.New("daemon: leader election needs a Kubernetes client")
	}
	if d.Rand == nil {
		d.Rand = rand.Float64
	}
	r := &Runner{opts: o, deps: d, pass: p, metrics: newMetrics(d.Registry, d.MetricsNamespace, d.Version)}
	if o.Schedule != "" {
		r.schedule, _ = ParseSchedule(o.Schedule)
	}
	return r, nil
}

// Run runs until ctx is done (a clean stop returns nil) or, with --once,
// runs one pass and returns its error.
func (r *Runner) Run(ctx context.Context) error {
	log := r.deps.Log
	if r.opts.Once {
		r.metrics.leader.Set(1)
		return r.runPass(ctx)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	adminErr := make(chan error, 1)
	if r.opts.AdminAddr != "" {
		srv := &admin.Server{Addr: r.opts.AdminAddr, Gatherer: r.deps.Registry, Ready: r.Ready, Log: log, Pprof: r.opts.Pprof}
		ln, err := srv.Listen()
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(ctx, ln); err != nil {
				adminErr <- err
				cancel()
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.probeAPI(ctx)
	}()
	var err error
	if r.opts.LeaderElection.Enabled {
		err = r.runElected(ctx)
	} else {
		r.metrics.leader.Set(1)
		err = r.loop(ctx)
	}
	cancel()
	wg.Wait()
	select {
	case aerr := <-adminErr:
		err = errors.Join(err, aerr)
	default:
	}
	return err
}

// loop runs passes until ctx is done, with any Starter work beside them.
func (r *Runner) loop(ctx context.Context) error {
	log := r.deps.Log
	startErr := make(chan error, 1)
	var wg sync.WaitGroup
	if s, ok := r.pass.(Starter); ok {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Start(ctx); err != nil && ctx.Err() == nil {
				startErr <- err
			}
		}()
	}
	defer wg.Wait()
	wait := time.Duration(0)
	if r.schedule != nil {
		wait = r.untilNext()
	}
	for {
		if wait > 0 {
			log.Debug("Waiting for next pass", zap.Duration("wait", wait))
			select {
			case <-ctx.Done():
				log.Info("Stopped")
				return nil
			case err := <-startErr:
				return err
			case <-r.deps.Clock.After(wait):
			}
		}
		select {
		case <-ctx.Done():
			log.Info("Stopped")
			return nil
		case err := <-startErr:
			return err
		default:
		}
		_ = r.runPass(ctx) // logged and counted in runPass; a daemon keeps going
		wait = r.untilNext()
	}
}

// untilNext returns the time to the next pass, jitter included.
func (r *Runner) untilNext() time.Duration {
	now := r.deps.Clock.Now()
	period := r.period(now)
	wait := period
	if r.schedule != nil {
		wait = r.schedule.Next(now).Sub(now)
	}
	if r.opts.Jitter > 0 {
		wait += time.Duration(r.opts.Jitter * r.deps.Rand() * float64(period))
	}
	return wait
}

// period is the interval, or the gap between the schedule's next two times.
func (r *Runner) period(now time.Time) time.Duration {
	if r.schedule == nil {
		return r.opts.Interval
	}
	next := r.schedule.Next(now)
	return r.schedule.Next(next).Sub(next)
}

// runPass runs one pass. When ctx is cancelled (SIGTERM) the pass may go on
// for ShutdownTimeout; then its context is cancelled too.
func (r *Runner) runPass(ctx context.Context) error {
	passCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		t := r.deps.Clock.NewTimer(r.opts.ShutdownTimeout)
		defer t.Stop()
		select {
		case <-t.C():
			r.deps.Log.Warn("Abandoning pass: shutdown timeout reached", zap.Duration("shutdownTimeout", r.opts.ShutdownTimeout))
			cancel()
		case <-passCtx.Done():
		}
	})
	defer stop()

	start := r.deps.Clock.Now()
	err := r.pass.RunOnce(passCtx)
	elapsed := r.deps.Clock.Since(start)
	r.metrics.duration.Observe(elapsed.Seconds())
	r.mu.Lock()
	r.lastErr = err
	if err == nil {
		r.lastSuccess = r.deps.Clock.Now()
	}
	r.mu.Unlock()
	if err != nil {
		r.metrics.runs.WithLabelValues("failure").Inc()
		r.deps.Log.Error("Pass failed", zap.Duration("duration", elapsed), zap.Error(err))
		return fmt.Errorf("pass: %w", err)
	}
	r.metrics.runs.WithLabelValues("success").Inc()
	r.metrics.lastSuccess.Set(float64(r.lastSuccessUnix()))
	r.deps.Log.Info("Pass succeeded", zap.Duration("duration", elapsed))
	return nil
}

func (r *Runner) lastSuccessUnix() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastSuccess.Unix()
}

// Ready reports nil when the API server answers (see --api-probe-interval)
// and a pass succeeded within ReadyIntervals periods or this replica is a
// standby waiting for the Lease. Not ready means this replica cannot do its
// work now; during an API server outage every replica is not ready at once,
// which says nothing about the pods themselves (liveness, /healthz, stays
// ok, so they are not restarted).
func (r *Runner) Ready() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.apiReadyLocked(); err != nil {
		return err
	}
	if r.standby {
		return nil
	}
	if r.lastSuccess.IsZero() {
		if r.lastErr != nil {
			return fmt.Errorf("no successful pass yet; last error: %w", r.lastErr)
		}
		return errors.New("no successful pass yet")
	}
	now := r.deps.Clock.Now()
	limit := time.Duration(r.opts.ReadyIntervals) * r.period(now)
	if age := now.Sub(r.lastSuccess); age > limit {
		return fmt.Errorf("last successful pass was %v ago (limit %v); last error: %v", age.Round(time.Second), limit, r.lastErr)
	}
	return nil
}

func (r *Runner) setStandby(v bool) {
	r.mu.Lock()
	r.standby = v
	r.mu.Unlock()
}

// runElected runs the loop while holding the Lease.
func (r *Runner) runElected(ctx context.Context) error {
	le := r.opts.LeaderElection
	log := r.deps.Log.With(zap.String("lease", le.Namespace+"/"+le.LeaseName), zap.String("identity", le.Identity))
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Name: le.LeaseName, Namespace: le.Namespace},
		Client:     r.deps.Client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: le.Identity},
	}
	r.setStandby(true)
	// OnStartedLeading runs in a goroutine of its own that elector.Run does
	// not wait for: loopDone closes when the loop has finished, and loopErr
	// is read only after that.
	var loopErr error
	loopDone := make(chan struct{})
	var led atomic.Bool
	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   le.LeaseDuration,
		RenewDeadline:   le.RenewDeadline,
		RetryPeriod:     le.RetryPeriod,
		ReleaseOnCancel: true,
		Name:            le.LeaseName,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(leadCtx context.Context) {
				defer close(loopDone)
				led.Store(true)
				log.Info("Started leading")
				r.setStandby(false)
				r.metrics.leader.Set(1)
				loopErr = r.loop(leadCtx)
			},
			OnStoppedLeading: func() {
				r.metrics.leader.Set(0)
				log.Info("Stopped leading")
			},
			OnNewLeader: func(id string) {
				if id != le.Identity {
					log.Info("Another replica leads", zap.String("leader", id))
				}
			},
		},
	})
	if err != nil {
		return fmt.Errorf("set up leader election on Lease %s/%s: %w", le.Namespace, le.LeaseName, err)
	}
	log.Info("Waiting for leadership")
	elector.Run(ctx)
	if !led.Load() {
		return nil // stopped before leading
	}
	<-loopDone // the loop's context is cancelled: it returns within the shutdown timeout
	if loopErr != nil {
		return loopErr
	}
	if ctx.Err() == nil {
		return ErrLostLeadership
	}
	return nil
}
