package testenv

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

func TestParallel(t *testing.T) {
	var mu sync.Mutex
	seen := map[int]int{}
	var running, peak atomic.Int64
	err := Parallel(100, 4, func(i int) error {
		if r := running.Add(1); r > peak.Load() {
			peak.Store(r)
		}
		defer running.Add(-1)
		mu.Lock()
		seen[i]++
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatalf("Parallel() = %v", err)
	}
	for i := range 100 {
		if seen[i] != 1 {
			t.Errorf("Parallel(100) called f(%d) %d times, want once", i, seen[i])
		}
	}
	if len(seen) != 100 {
		t.Errorf("Parallel(100) called f for %d indexes, want 100", len(seen))
	}
	if p := peak.Load(); p > 4 {
		t.Errorf("Parallel(workers=4) ran %d calls at once", p)
	}
}

func TestParallelStopsAtTheFirstError(t *testing.T) {
	boom := errors.New("create namespace: quota exceeded")
	var calls atomic.Int64
	err := Parallel(1000, 1, func(i int) error {
		calls.Add(1)
		if i == 10 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Errorf("Parallel() = %v, want %v", err, boom)
	}
	if c := calls.Load(); c != 11 {
		t.Errorf("Parallel(workers=1) made %d calls, want 11 (none after the error)", c)
	}
}
