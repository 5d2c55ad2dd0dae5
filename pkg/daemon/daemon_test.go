package daemon

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"k8s.io/utils/clock"
)

type recorder struct {
	mu    sync.Mutex
	times []time.Time
	errs  []error
	block time.Duration
}

func (p *recorder) RunOnce(ctx context.Context) error {
	p.mu.Lock()
	n := len(p.times)
	p.times = append(p.times, time.Now())
	var err error
	if n < len(p.errs) {
		err = p.errs[n]
	}
	block := p.block
	p.mu.Unlock()
	if block > 0 {
		select {
		case <-time.After(block):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return err
}

func (p *recorder) count() int { p.mu.Lock(); defer p.mu.Unlock(); return len(p.times) }

func newRunner(t *testing.T, o Options, p Pass) (*Runner, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	if o.ReadyIntervals == 0 {
		o.ReadyIntervals = 2
	}
	r, err := New(o, Deps{MetricsNamespace: "tool", Version: "test", Log: zap.NewNop(), Clock: clock.RealClock{}, Registry: reg, Rand: func() float64 { return 0.5 }}, p)
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	return r, reg
}

func TestOnce(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		wantErr bool
		result  string
	}{
		{name: "success", result: "success"},
		{name: "failure", err: errors.New("ldap down"), wantErr: true, result: "failure"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &recorder{errs: []error{tt.err}}
			r, reg := newRunner(t, Options{Once: true}, p)
			err := r.Run(context.Background())
			if (err != nil) != tt.wantErr {
				t.Fatalf("Run() = %v, wantErr %v", err, tt.wantErr)
			}
			if tt.wantErr && !errors.Is(err, tt.err) {
				t.Errorf("Run() = %v, does not wrap %v", err, tt.err)
			}
			if p.count() != 1 {
				t.Errorf("passes = %d, want 1", p.count())
			}
			if got := testutil.ToFloat64(r.metrics.runs.WithLabelValues(tt.result)); got != 1 {
				t.Errorf("runs_total{result=%q} = %v, want 1", tt.result, got)
			}
			if n, err := testutil.GatherAndCount(reg, "tool_build_info"); err != nil || n != 1 {
				t.Errorf("tool_build_info count = %d, %v; want 1", n, err)
			}
		})
	}
}

func TestIntervalWithJitter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &recorder{}
		r, _ := newRunner(t, Options{Interval: time.Minute, Jitter: 0.2}, p)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		start := time.Now()
		go func() { done <- r.Run(ctx) }()
		time.Sleep(3*time.Minute + 30*time.Second) // fake time inside the bubble
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run() = %v", err)
		}
		// Passes at 0, then every interval + 0.5*0.2*interval = 66s: 0, 66, 132, 198.
		want := []time.Duration{0, 66 * time.Second, 132 * time.Second, 198 * time.Second}
		if len(p.times) != len(want) {
			t.Fatalf("passes at %v, want %d passes", p.times, len(want))
		}
		for i, w := range want {
			if got := p.times[i].Sub(start); got != w {
				t.Errorf("pass %d at %v, want %v", i, got, w)
			}
		}
	})
}

func TestScheduleWaitsAndNeverOverlaps(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Each pass takes 90 s on a 1-minute schedule: the next pass starts at
		// the next minute after the previous one ended, never two at once.
		p := &recorder{block: 90 * time.Second}
		r, _ := newRunner(t, Options{Schedule: "* * * * *"}, p)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- r.Run(ctx) }()
		time.Sleep(10 * time.Minute)
		cancel()
		<-done
		if len(p.times) < 3 {
			t.Fatalf("passes = %d, want at least 3", len(p.times))
		}
		for i, ts := range p.times {
			if ts.Second() != 0 || ts.Nanosecond() != 0 {
				t.Errorf("pass %d started at %v, not on a minute boundary", i, ts)
			}
			if i > 0 && ts.Sub(p.times[i-1]) < 90*time.Second {
				t.Errorf("pass %d started %v after the previous one, which ran 90s: overlap", i, ts.Sub(p.times[i-1]))
			}
		}
	})
}

func TestShutdownAbandonsPassAfterTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &recorder{block: time.Hour}
		r, _ := newRunner(t, Options{Interval: time.Minute, ShutdownTimeout: 10 * time.Second}, p)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- r.Run(ctx) }()
		time.Sleep(time.Second)
		stopAt := time.Now()
		cancel()
		<-done
		if got := time.Since(stopAt); got != 10*time.Second {
			t.Errorf("Run returned %v after SIGTERM, want the 10s shutdown timeout", got)
		}
	})
}

func TestShutdownLetsShortPassFinish(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &recorder{block: 3 * time.Second}
		r, _ := newRunner(t, Options{Interval: time.Minute, ShutdownTimeout: 10 * time.Second}, p)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- r.Run(ctx) }()
		time.Sleep(time.Second)
		cancel()
		<-done
		if got := testutil.ToFloat64(r.metrics.runs.WithLabelValues("success")); got != 1 {
			t.Errorf("runs_total{success} = %v, want 1 (the pass finished within the timeout)", got)
		}
	})
}

func TestReady(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &recorder{errs: []error{errors.New("boom"), nil, errors.New("a"), errors.New("b"), errors.New("c")}}
		r, _ := newRunner(t, Options{Interval: time.Minute, ReadyIntervals: 2}, p)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() { _ = r.Run(ctx) }()
		synctest.Wait()
		if err := r.Ready(); err == nil || !strings.Contains(err.Error(), "boom") {
			t.Errorf("Ready() after a failed first pass = %v, want an error naming it", err)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if err := r.Ready(); err != nil {
			t.Errorf("Ready() after a success = %v, want nil", err)
		}
		time.Sleep(2 * time.Minute) // two failures since; success is 2 min old
		synctest.Wait()
		if err := r.Ready(); err != nil {
			t.Errorf("Ready() 2 periods after success = %v, want nil", err)
		}
		time.Sleep(time.Minute + time.Second)
		synctest.Wait()
		if err := r.Ready(); err == nil {
			t.Errorf("Ready() more than 2 periods after success = nil, want an error")
		}
	})
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		o    Options
		want string
	}{
		{name: "ok", o: Options{Interval: time.Minute, ReadyIntervals: 1}},
		{name: "bad schedule", o: Options{Schedule: "every day", ReadyIntervals: 1}, want: "--schedule"},
		{name: "zero interval", o: Options{ReadyIntervals: 1}, want: "--interval"},
		{name: "jitter", o: Options{Interval: time.Minute, Jitter: 2, ReadyIntervals: 1}, want: "--jitter"},
		{name: "lease timings", o: Options{Interval: time.Minute, ReadyIntervals: 1, LeaderElection: LeaderElectionOptions{
			Enabled: true, Namespace: "x", Identity: "a", LeaseName: "l", LeaseDuration: time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: time.Second}},
			want: "lease-duration > renew-deadline"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.o.Validate()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("Validate() = %v, want error containing %q", err, tt.want)
			}
		})
	}
}
