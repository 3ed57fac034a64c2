package benchmark

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func TestParallelCallsEachIndexOnceWithBoundedConcurrency(t *testing.T) {
	t.Parallel()
	const n, workers = 1000, 7
	calls := make([]atomic.Int32, n)
	var running, peak atomic.Int32
	err := Parallel(n, workers, func(i int) error {
		r := running.Add(1)
		for p := peak.Load(); r > p && !peak.CompareAndSwap(p, r); p = peak.Load() {
		}
		calls[i].Add(1)
		time.Sleep(10 * time.Microsecond)
		running.Add(-1)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range calls {
		if c := calls[i].Load(); c != 1 {
			t.Fatalf("index %d called %d times", i, c)
		}
	}
	if p := peak.Load(); p > workers {
		t.Fatalf("%d calls at once, want at most %d", p, workers)
	}
}

func TestParallelReturnsAFailure(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	var after atomic.Int32
	err := Parallel(100, 1, func(i int) error {
		if i == 10 {
			return boom
		}
		if i > 10 {
			after.Add(1)
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err %v, want boom", err)
	}
	if after.Load() != 0 {
		t.Fatalf("the failed worker went on with %d more calls", after.Load())
	}
}

func TestPercentile(t *testing.T) {
	t.Parallel()
	var lat []time.Duration
	for i := 1; i <= 100; i++ {
		lat = append(lat, time.Duration(i)*time.Millisecond)
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{0, time.Millisecond}, {0.5, 51 * time.Millisecond}, {0.99, 100 * time.Millisecond}, {1, 100 * time.Millisecond}} {
		if got := Percentile(lat, c.p); got != c.want {
			t.Errorf("p%v = %v, want %v", c.p*100, got, c.want)
		}
	}
	if got := Percentile(nil, 0.5); got != 0 {
		t.Errorf("no samples: %v, want 0", got)
	}
}
