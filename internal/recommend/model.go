package recommend

import (
	"container/heap"
	"context"
	"math"
	"sync"
)

// Model scores every track of the catalogue for a listener.
type Model interface {
	// Name identifies the model in results and reports.
	Name() string
	// Scores writes listener u's score of every track into dst (one per
	// track; larger is better). dst arrives zeroed.
	Scores(u int, dst []float32)
}

// Scored is a recommended track with its score.
type Scored struct {
	Track int32
	Score float32
}

// TopN returns the n best-scored tracks of scores, best first, leaving out
// the tracks in exclude and tracks scored -Inf. Ties go to the lower index.
func TopN(scores []float32, exclude []int32, n int) []Scored {
	for _, c := range exclude {
		scores[c] = float32(math.Inf(-1))
	}
	h := make(minHeap, 0, n)
	for i, s := range scores {
		if math.IsInf(float64(s), -1) || math.IsNaN(float64(s)) {
			continue
		}
		if len(h) < n {
			heap.Push(&h, Scored{int32(i), s})
			continue
		}
		if n > 0 && s > h[0].Score { // equal score: the earlier (lower) index stays
			h[0] = Scored{int32(i), s}
			heap.Fix(&h, 0)
		}
	}
	out := make([]Scored, len(h))
	for k := len(h) - 1; k >= 0; k-- {
		out[k] = heap.Pop(&h).(Scored)
	}
	return out
}

// best returns the n best of cands, best first: highest score, ties to the
// lower track — the order a full sort would give, at O(len·log n) instead
// of sorting every candidate to keep a few. cands may be in any order.
func best(cands []Scored, n int) []Scored {
	if n <= 0 {
		return nil
	}
	h := make(minHeap, 0, min(n, len(cands)))
	for _, c := range cands {
		if len(h) < n {
			heap.Push(&h, c)
			continue
		}
		if w := h[0]; c.Score > w.Score || (c.Score == w.Score && c.Track < w.Track) {
			h[0] = c
			heap.Fix(&h, 0)
		}
	}
	out := make([]Scored, len(h))
	for k := len(h) - 1; k >= 0; k-- {
		out[k] = heap.Pop(&h).(Scored)
	}
	return out
}

// minHeap keeps the worst of the kept on top: lowest score, then highest
// index.
type minHeap []Scored

func (h minHeap) Len() int { return len(h) }
func (h minHeap) Less(a, b int) bool {
	if h[a].Score != h[b].Score {
		return h[a].Score < h[b].Score
	}
	return h[a].Track > h[b].Track
}
func (h minHeap) Swap(a, b int) { h[a], h[b] = h[b], h[a] }
func (h *minHeap) Push(x any)   { *h = append(*h, x.(Scored)) }
func (h *minHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// RecommendAll computes the top n of every listener in users (all when nil)
// with workers goroutines, leaving out what each listener played in train,
// and calls fn with each listener's list. fn is called from the workers,
// one listener at a time per worker; the lists are fn's to keep.
func RecommendAll(ctx context.Context, m Model, train *Matrix, users []int, n, workers int, fn func(u int, top []Scored) error) error {
	if users == nil {
		users = make([]int, train.Rows)
		for u := range users {
			users[u] = u
		}
	}
	workers = max(workers, 1)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dst := make([]float32, train.NCols)
			for k := w; k < len(users); k += workers {
				if k%256 == w && ctx.Err() != nil {
					return
				}
				u := users[k]
				clear(dst)
				m.Scores(u, dst)
				var seen []int32
				if u < train.Rows {
					seen, _ = train.Row(u)
				}
				if err := fn(u, TopN(dst, seen, n)); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					cancel()
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

// parallel runs f(lo, hi) over [0, n) in contiguous chunks on workers
// goroutines; each index is handled by exactly one call.
func parallel(n, workers int, f func(lo, hi int)) {
	workers = max(1, min(workers, n))
	chunk := (n + workers*8 - 1) / (workers * 8)
	chunk = max(chunk, 1)
	var next int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				lo := int(next)
				next += int64(chunk)
				mu.Unlock()
				if lo >= n {
					return
				}
				f(lo, min(lo+chunk, n))
			}
		}()
	}
	wg.Wait()
}
