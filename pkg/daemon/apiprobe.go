package daemon

import (
	"context"
	"fmt"
	"reflect"
	"time"

	"go.uber.org/zap"
)

// apiFailuresNotReady is how many failed API checks in a row make the tool
// not ready.
const apiFailuresNotReady = 2

// probeAPI checks every APIProbeInterval that the API server answers GET
// /version (allowed to every authenticated identity), until ctx is done. The
// result is the api_server_reachable gauge and part of Ready.
func (r *Runner) probeAPI(ctx context.Context) {
	if r.opts.APIProbeInterval <= 0 || r.deps.Client == nil {
		return
	}
	rc := r.deps.Client.Discovery().RESTClient()
	if rc == nil || reflect.ValueOf(rc).IsNil() { // fake clients have none
		return
	}
	log := r.deps.Log
	reachable := true
	for {
		reqCtx, cancel := context.WithTimeout(ctx, max(r.opts.APIProbeInterval, time.Second))
		err := rc.Get().AbsPath("/version").Do(reqCtx).Error()
		cancel()
		if ctx.Err() != nil {
			return
		}
		r.mu.Lock()
		if err != nil {
			r.apiFailures++
			r.apiErr = err
		} else {
			r.apiFailures = 0
			r.apiErr = nil
		}
		failures := r.apiFailures
		r.mu.Unlock()
		switch {
		case err == nil:
			if !reachable {
				log.Info("Reached the API server again")
			}
			reachable = true
			r.metrics.apiReachable.Set(1)
		case failures >= apiFailuresNotReady:
			r.metrics.apiProbeFailures.Inc()
			if reachable {
				log.Warn("Cannot reach the API server; not ready", zap.Error(err))
			}
			reachable = false
			r.metrics.apiReachable.Set(0)
		default:
			r.metrics.apiProbeFailures.Inc()
		}
		select {
		case <-ctx.Done():
			return
		case <-r.deps.Clock.After(r.opts.APIProbeInterval):
		}
	}
}

// apiReadyLocked returns an error while the API server is unreachable.
func (r *Runner) apiReadyLocked() error {
	if r.apiFailures >= apiFailuresNotReady {
		return fmt.Errorf("cannot reach the API server (%d checks failed in a row): %v", r.apiFailures, r.apiErr)
	}
	return nil
}
