package testenv

import "sync"

// Parallel calls f(0) … f(n-1) on workers goroutines, for the set-up of many
// objects (a benchmark's thousands of namespaces). After the first error no
// new call starts; the calls under way finish, and the first error is
// returned.
func Parallel(n, workers int, f func(i int) error) error {
	var (
		mu    sync.Mutex
		next  int
		first error
		wg    sync.WaitGroup
	)
	// take returns the next index, or false once all are handed out or a
	// call has failed.
	take := func() (int, bool) {
		mu.Lock()
		defer mu.Unlock()
		if first != nil || next >= n {
			return 0, false
		}
		next++
		return next - 1, true
	}
	for range max(workers, 1) {
		wg.Go(func() {
			for i, ok := take(); ok; i, ok = take() {
				if err := f(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return first
}
