package reaper

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"k8s.io/utils/clock"
)

// brake is the mass-deletion guard of one reaper, the single owner of the
// deletion budget for the pass and the watch workers alike:
//
//   - a token bucket of --max-deletions-per-minute (burst: one minute's
//     worth) that every pod and orphan deletion takes a token from; when it
//     is empty a deletion waits for the next token (nothing is dropped or
//     left for a later pass), so a busy cluster is slowed, never stopped;
//   - an anomaly trip: when more pods are overdue by more than
//     --anomaly-overdue at once than both --anomaly-min-pods and
//     --anomaly-percent of the pods in scope, the reaper stops deleting
//     until it restarts. Ordinary expiries, a large array job ending
//     together included, are found at their deadline (overdue by
//     milliseconds) and never count; what counts is a clock jump, a
//     lowered --max-lifetime, or a long outage of the reaper.
type brake struct {
	limiter    *rate.Limiter // nil: no rate limit
	clock      clock.PassiveClock
	percent    float64
	minPods    int
	overdue    time.Duration
	windowSize time.Duration

	mu      sync.Mutex
	tripped string      // why it stopped; "" while running
	window  []time.Time // surprising deletions of the watch, newest last
}

func newBrake(c *Config, clk clock.PassiveClock) *brake {
	b := &brake{clock: clk, percent: c.AnomalyPercent, minPods: c.AnomalyMinPods, overdue: c.AnomalyOverdue, windowSize: time.Minute}
	if c.MaxDeletionsPerMinute > 0 {
		b.limiter = rate.NewLimiter(rate.Limit(float64(c.MaxDeletionsPerMinute)/60), c.MaxDeletionsPerMinute)
	}
	return b
}

// wait takes a token, waiting for one if needed; it reports whether it had
// to wait.
func (b *brake) wait(ctx context.Context) (waited bool, err error) {
	if b.limiter == nil {
		return false, nil
	}
	if b.limiter.Allow() {
		return false, nil
	}
	if err := b.limiter.Wait(ctx); err != nil {
		return true, fmt.Errorf("wait for the deletion rate limit: %w", err)
	}
	return true, nil
}

// enabled says whether the anomaly trip is on.
func (b *brake) enabled() bool { return b.percent > 0 }

// limit is how many surprisingly overdue pods at once trip it among total.
func (b *brake) limit(total int) int {
	return max(b.minPods, int(b.percent*float64(total)/100))
}

// surprising says whether a pod overdue since deadline counts.
func (b *brake) surprising(deadline, now time.Time) bool {
	return b.enabled() && now.Sub(deadline) > b.overdue
}

// checkPass trips when n of the total pods of a full pass are surprisingly
// overdue; it returns the reason when it is (or was already) tripped.
func (b *brake) checkPass(n, total int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tripped == "" && b.enabled() && n > b.limit(total) {
		b.tripped = fmt.Sprintf("%d of %d pods in scope are overdue by more than %v at once (limit %d: --anomaly-min-pods %d, --anomaly-percent %v)",
			n, total, b.overdue, b.limit(total), b.minPods, b.percent)
	}
	return b.tripped
}

// checkOne counts one surprisingly overdue pod found by the watch against
// those of the last minute; it returns the reason when it is (or was
// already) tripped.
func (b *brake) checkOne(total int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tripped != "" || !b.enabled() {
		return b.tripped
	}
	now := b.clock.Now()
	cut := 0
	for cut < len(b.window) && now.Sub(b.window[cut]) > b.windowSize {
		cut++
	}
	b.window = append(b.window[cut:], now)
	if n := len(b.window); n > b.limit(total) {
		b.tripped = fmt.Sprintf("%d of %d pods in scope were found overdue by more than %v within %v (limit %d: --anomaly-min-pods %d, --anomaly-percent %v)",
			n, total, b.overdue, b.windowSize, b.limit(total), b.minPods, b.percent)
	}
	return b.tripped
}

// stopped returns why the reaper stopped deleting, or "".
func (b *brake) stopped() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.tripped
}
