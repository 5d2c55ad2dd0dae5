package testenv

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// The polling Eventually does: the API server, its informers and the tools
// act asynchronously, so a test waits for a state, bounded, and never sleeps.
const (
	PollInterval = 50 * time.Millisecond
	PollTimeout  = 20 * time.Second
)

// Poll calls cond every interval until it returns true, timeout passes or ctx
// ends. An error from cond is not final (the servers are asynchronous: a GET
// may be NotFound until the object exists): it is kept and, when time runs
// out, returned with the timeout; an error marked Final is returned at once.
func Poll(ctx context.Context, interval, timeout time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		var final finalError
		if errors.As(err, &final) {
			return final.err
		}
		left := time.Until(deadline)
		switch {
		case ctx.Err() != nil && err != nil:
			return fmt.Errorf("not done: %w (last error: %w)", ctx.Err(), err)
		case ctx.Err() != nil:
			return fmt.Errorf("not done: %w", ctx.Err())
		case left <= 0 && err != nil:
			return fmt.Errorf("not done within %v (last error: %w)", timeout, err)
		case left <= 0:
			return fmt.Errorf("not done within %v", timeout)
		}
		select {
		case <-ctx.Done():
		case <-time.After(min(interval, left)):
		}
	}
}

// Eventually fails the test unless cond returns true within PollTimeout,
// polled every PollInterval; what names the awaited state in the message
// ("waiting for <what>: not done within 20s (last error: …)").
func Eventually(t testing.TB, what string, cond func() (bool, error)) {
	t.Helper()
	EventuallyWithin(t, PollTimeout, what, cond)
}

// EventuallyWithin is Eventually with its own timeout, for states that take
// longer than PollTimeout (a controller-manager's garbage collection, a
// restarted API server).
func EventuallyWithin(t testing.TB, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	if err := Poll(context.Background(), PollInterval, timeout, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// Final marks an error of a Poll or Eventually condition as final: polling
// stops at once with err (a server the test waits on has exited; waiting
// longer cannot help).
func Final(err error) error { return finalError{err} }

type finalError struct{ err error }

func (f finalError) Error() string { return f.err.Error() }
func (f finalError) Unwrap() error { return f.err }
