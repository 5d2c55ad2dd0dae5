package testenv

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func TestPoll(t *testing.T) {
	errNotYet := errors.New("not found yet")
	tests := []struct {
		name    string
		trueAt  int   // the call that returns true (0: never)
		err     error // returned by the calls before
		wantErr string
		calls   int
	}{
		{name: "at once", trueAt: 1, calls: 1},
		{name: "after errors", trueAt: 3, err: errNotYet, calls: 3},
		{name: "never", calls: 11, wantErr: "not done within 1s"},
		{name: "never, with the last error", err: errNotYet, calls: 11, wantErr: "not done within 1s (last error: not found yet)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				calls := 0
				err := Poll(context.Background(), 100*time.Millisecond, time.Second, func() (bool, error) {
					calls++
					if calls == tt.trueAt {
						return true, nil
					}
					return false, tt.err
				})
				if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr) {
					t.Errorf("Poll() = %v, want %q", err, tt.wantErr)
				}
				if tt.err != nil && tt.wantErr != "" && !errors.Is(err, errNotYet) {
					t.Errorf("Poll() = %v, does not wrap the last error", err)
				}
				if calls != tt.calls {
					t.Errorf("Poll() called cond %d times, want %d (every interval, then once more at the deadline)", calls, tt.calls)
				}
			})
		})
	}
}

func TestPollStopsAtAFinalError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		exited := errors.New("the service exited")
		calls := 0
		err := Poll(context.Background(), 100*time.Millisecond, time.Minute, func() (bool, error) {
			if calls++; calls == 3 {
				return false, Final(exited)
			}
			return false, errors.New("connection refused")
		})
		if err != exited {
			t.Errorf("Poll() = %v, want the final error itself", err)
		}
		if calls != 3 {
			t.Errorf("Poll() called cond %d times, want 3 (none after the final error)", calls)
		}
	})
}

func TestPollStopsWithContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		calls := 0
		err := Poll(ctx, 100*time.Millisecond, time.Minute, func() (bool, error) {
			if calls++; calls == 2 {
				cancel()
			}
			return false, nil
		})
		if err == nil || !errors.Is(err, context.Canceled) {
			t.Errorf("Poll() after cancel = %v, want context.Canceled", err)
		}
		if calls != 2 {
			t.Errorf("Poll() called cond %d times after cancel, want 2", calls)
		}
	})
}

// fatalRecorder is a testing.TB whose Fatalf records the message and ends
// the goroutine, as testing's does.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Helper() {}
func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestEventuallyMessage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &fatalRecorder{TB: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			Eventually(rec, "the Reaped event", func() (bool, error) { return false, errors.New("events is forbidden") })
		}()
		<-done
		want := "waiting for the Reaped event: not done within 20s (last error: events is forbidden)"
		if rec.msg != want {
			t.Errorf("Eventually failed with %q, want %q", rec.msg, want)
		}
		ok := &fatalRecorder{TB: t}
		n := 0
		Eventually(ok, "the third try", func() (bool, error) { n++; return n == 3, nil })
		if ok.msg != "" || n != 3 {
			t.Errorf("Eventually(true at the third call) failed %q after %d calls", ok.msg, n)
		}
	})
}

func TestUniqueName(t *testing.T) {
	e := &Env{}
	a, b := e.UniqueName("User-"), e.UniqueName("User-")
	if a == b {
		t.Errorf("UniqueName twice = %q and %q, want different names", a, b)
	}
	for _, n := range []string{a, b} {
		if !strings.HasPrefix(n, "user-") || strings.ToLower(n) != n {
			t.Errorf("UniqueName(%q) = %q, want lower case starting with user-", "User-", n)
		}
	}
}
