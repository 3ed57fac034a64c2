package steering

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"time"
)

// POP is one configured point of presence.
type POP struct {
	Name   string `json:"name"`
	Region string `json:"region"`
	URL    string `json:"url"` // base URL, e.g. http://127.0.0.1:9101
}

// popStats is the part of an edge's /stats steering uses.
type popStats struct {
	Name           string  `json:"name"`
	Connections    int64   `json:"connections"`
	CPULoad        float64 `json:"cpu_load"`
	NetworkLoad    float64 `json:"network_load"`
	HitRatio       float64 `json:"hit_ratio"`
	BytesOutPerSec float64 `json:"bytes_out_per_sec"`
}

// debounce turns noisy samples into a stable state: it flips to true after
// rise consecutive true samples and to false after fall consecutive false
// ones (HAProxy's rise/fall). The first sample sets the state directly.
type debounce struct {
	state, seeded bool
	run           int // consecutive samples disagreeing with state
}

func (d *debounce) update(sample bool, rise, fall int) bool {
	if !d.seeded {
		d.state, d.seeded = sample, true
		return d.state
	}
	if sample == d.state {
		d.run = 0
		return d.state
	}
	d.run++
	need := fall
	if sample {
		need = rise
	}
	if d.run >= need {
		d.state, d.run = sample, 0
	}
	return d.state
}

// popState is the health map entry of one POP.
type popState struct {
	POP
	healthy    debounce // polls succeed and stats are within thresholds
	overloaded debounce // load above the selection cut (80%)
	srtt       float64  // smoothed RTT in ms (EWMA, gain 1/8)
	jitter     float64  // RFC 3550 §6.4.1 interarrival jitter estimate, ms
	lastRTT    float64
	samples    int
	stats      popStats
	lastErr    string
	lastPoll   time.Time
}

// observeRTT folds one probe RTT into the smoothed RTT and the jitter
// estimate J += (|D| - J)/16, where D is the difference between successive
// transit times (for a round trip probe, successive RTTs).
func (p *popState) observeRTT(ms float64) {
	if p.samples == 0 {
		p.srtt = ms
	} else {
		p.srtt += (ms - p.srtt) / 8
		d := math.Abs(ms - p.lastRTT)
		p.jitter += (d - p.jitter) / 16
	}
	p.lastRTT = ms
	p.samples++
}

// load is the share of the POP's capacity in use: the larger of CPU and network.
func (p *popState) load() float64 { return math.Max(p.stats.CPULoad, p.stats.NetworkLoad) }

// poll fetches one POP's /stats, timing the round trip.
// The POPs' /stats is the operator's: the poll carries token when set.
func poll(ctx context.Context, c *http.Client, pop POP, token string, timeout time.Duration) (popStats, float64, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, pop.URL+"/stats", nil)
	if err != nil {
		return popStats{}, 0, fmt.Errorf("poll %s: %w", pop.Name, err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return popStats{}, 0, fmt.Errorf("poll %s: %w", pop.Name, err)
	}
	defer resp.Body.Close()
	var st popStats
	if resp.StatusCode != http.StatusOK {
		return popStats{}, 0, fmt.Errorf("poll %s: status %d", pop.Name, resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&st); err != nil {
		return popStats{}, 0, fmt.Errorf("poll %s: decode stats: %w", pop.Name, err)
	}
	return st, float64(time.Since(start).Microseconds()) / 1000, nil
}
