// Package probe is the client side of steering mode A: it asks the steering
// service for candidate POPs, times a few requests to each (mean RTT and
// RFC 3550 jitter), and picks the best — the client measures the path the
// server cannot see (its own access network).
package probe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"sort"
	"sync"
	"time"

	"github.com/overture-music/overture/internal/steering"
)

// Result is the measurement of one candidate.
type Result struct {
	steering.Candidate
	MeanRTT time.Duration
	Jitter  time.Duration // RFC 3550 estimator over successive RTTs
	Failed  int
	Err     error
}

// Score orders results: mean RTT plus twice the jitter (a jittery path
// stalls playback more than a uniformly slower one); failures rank last.
func (r Result) Score() time.Duration {
	if r.Err != nil {
		return math.MaxInt64
	}
	return r.MeanRTT + 2*r.Jitter
}

// Fetch asks the steering service at base for candidates.
func Fetch(ctx context.Context, c *http.Client, base, accessToken, track, rendition string) (steering.Candidates, error) {
	var out steering.Candidates
	u := base + "/v1/cdn/candidates?track=" + url.QueryEscape(track) + "&rendition=" + url.QueryEscape(rendition)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return out, fmt.Errorf("candidates request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	resp, err := c.Do(req)
	if err != nil {
		return out, fmt.Errorf("fetch candidates: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return out, fmt.Errorf("fetch candidates: status %d: %s", resp.StatusCode, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return out, fmt.Errorf("decode candidates: %w", err)
	}
	return out, nil
}

// Measure times n GETs of each candidate's probe URL, all candidates in
// parallel, and returns the results best first.
func Measure(ctx context.Context, c *http.Client, cands []steering.Candidate, n int) []Result {
	if n < 2 {
		n = 2
	}
	res := make([]Result, len(cands))
	var wg sync.WaitGroup
	for i, cand := range cands {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i] = measure(ctx, c, cand, n)
		}()
	}
	wg.Wait()
	sort.SliceStable(res, func(i, j int) bool { return res[i].Score() < res[j].Score() })
	return res
}

func measure(ctx context.Context, c *http.Client, cand steering.Candidate, n int) Result {
	r := Result{Candidate: cand}
	var sum, jitter, last float64
	ok := 0
	// The first request pays for the TCP handshake; time it but do not count
	// it, so a fresh connection does not punish a candidate.
	for i := 0; i <= n; i++ {
		d, err := once(ctx, c, cand.ProbeURL)
		if err != nil {
			r.Failed++
			r.Err = err
			continue
		}
		if i == 0 {
			continue
		}
		ms := float64(d) / float64(time.Millisecond)
		if ok > 0 {
			jitter += (math.Abs(ms-last) - jitter) / 16
		}
		last = ms
		sum += ms
		ok++
	}
	if ok == 0 {
		if r.Err == nil {
			r.Err = errors.New("no successful probe")
		}
		return r
	}
	if r.Failed*2 <= n { // a majority succeeded: usable, failures noted
		r.Err = nil
	}
	r.MeanRTT = time.Duration(sum / float64(ok) * float64(time.Millisecond))
	r.Jitter = time.Duration(jitter * float64(time.Millisecond))
	return r
}

func once(ctx context.Context, c *http.Client, u string) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode >= 400 {
		return 0, fmt.Errorf("probe %s: status %d", u, resp.StatusCode)
	}
	return time.Since(start), nil
}

// Best fetches candidates, measures them and returns the best one's result.
func Best(ctx context.Context, c *http.Client, steeringURL, accessToken, track, rendition string, n int) (Result, []Result, error) {
	cands, err := Fetch(ctx, c, steeringURL, accessToken, track, rendition)
	if err != nil {
		return Result{}, nil, err
	}
	res := Measure(ctx, c, cands.Candidates, n)
	if len(res) == 0 || res[0].Err != nil {
		return Result{}, res, fmt.Errorf("no candidate answered: %w", errors.Join(errFirst(res)))
	}
	return res[0], res, nil
}

func errFirst(res []Result) error {
	if len(res) == 0 {
		return errors.New("no candidates")
	}
	return res[0].Err
}
