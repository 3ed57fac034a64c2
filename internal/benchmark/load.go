package benchmark

import (
	"sync"
	"sync/atomic"
	"time"
)

// Parallel calls fn(i) for every i in [0,n) from workers goroutines, each
// taking the next i as soon as its previous call returned (a closed loop).
// A goroutine whose call fails stops; Parallel returns the first error once
// all have stopped.
func Parallel(n, workers int, fn func(i int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	var first atomic.Value
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					first.CompareAndSwap(nil, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := first.Load().(error); err != nil {
		return err
	}
	return nil
}

// Percentile returns the p-quantile (0 <= p <= 1) of sorted latencies, the
// nearest rank at or above p; 0 for none.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(float64(len(sorted))*p))]
}
