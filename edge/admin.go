package edge

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/overture-music/overture/internal/server"
)

var errRedisNil = redis.Nil

// PurgeRequest names what to drop: exact keys, key prefixes, or tags (track ids).
type PurgeRequest struct {
	Keys     []string `json:"keys,omitempty"`
	Prefixes []string `json:"prefixes,omitempty"`
	Tags     []string `json:"tags,omitempty"`
}

// PurgeResult counts the objects dropped.
type PurgeResult struct {
	Purged int `json:"purged"`
}

// Purge drops objects; purging what is not cached is not an error, so a
// retried purge is harmless.
func (s *Server) Purge(req PurgeRequest) PurgeResult {
	keys := map[string]struct{}{}
	for _, k := range req.Keys {
		keys[k] = struct{}{}
	}
	for _, p := range req.Prefixes {
		if p == "" {
			continue
		}
		for _, k := range s.store.keysByPrefix(p) {
			keys[k] = struct{}{}
		}
	}
	for _, t := range req.Tags {
		for _, k := range s.store.keysByTag(t) {
			keys[k] = struct{}{}
		}
	}
	n := 0
	for k := range keys {
		if s.store.purge(k) {
			n++
		}
	}
	s.metrics.purged.Add(float64(n))
	return PurgeResult{Purged: n}
}

func decodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeProblem(w, r, http.StatusBadRequest, "bad-json", "request body: "+err.Error())
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) servePurge(w http.ResponseWriter, r *http.Request) {
	var req PurgeRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	if len(req.Keys)+len(req.Prefixes)+len(req.Tags) == 0 {
		writeProblem(w, r, http.StatusBadRequest, "empty-purge", "name at least one key, prefix or tag")
		return
	}
	for _, p := range req.Prefixes {
		if p == "" {
			writeProblem(w, r, http.StatusBadRequest, "empty-prefix", "an empty prefix would purge everything; purge by tag or key instead")
			return
		}
	}
	res := s.Purge(req)
	s.log.Info("purge", "keys", len(req.Keys), "prefixes", len(req.Prefixes), "tags", len(req.Tags), "purged", res.Purged)
	writeJSON(w, http.StatusOK, res)
}

// WarmRequest lists keys to pull into the cache now. A playlist key also
// warms every segment (and init section) it references.
type WarmRequest struct {
	Keys []string `json:"keys"`
}

// WarmResult reports a warm.
type WarmResult struct {
	Objects int               `json:"objects"`
	Bytes   int64             `json:"bytes"`
	Failed  map[string]string `json:"failed,omitempty"`
}

// Warm fetches every slice of each key (and of the segments of playlists)
// through the coalescer, so it shares fetches with concurrent listeners.
func (s *Server) Warm(ctx context.Context, keys []string) WarmResult {
	res := WarmResult{Failed: map[string]string{}}
	var mu sync.Mutex
	queue := append([]string(nil), keys...)
	seen := map[string]bool{}
	for len(queue) > 0 {
		batch := queue
		queue = nil
		var wg sync.WaitGroup
		sem := make(chan struct{}, 8)
		for _, k := range batch {
			if seen[k] {
				continue
			}
			seen[k] = true
			if !validKey(k) {
				res.Failed[k] = "invalid key"
				continue
			}
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				n, refs, err := s.warmOne(ctx, k)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					res.Failed[k] = err.Error()
					return
				}
				res.Objects++
				res.Bytes += n
				queue = append(queue, refs...)
			}()
		}
		wg.Wait()
	}
	if len(res.Failed) == 0 {
		res.Failed = nil
	}
	return res
}

func (s *Server) warmOne(ctx context.Context, key string) (int64, []string, error) {
	info, _, err := s.object(ctx, key)
	if err != nil {
		return 0, nil, err
	}
	var playlist bytes.Buffer
	for i := int64(0); i < s.store.slices(info.Size); i++ {
		b, err := s.slice(ctx, info, i)
		if err != nil {
			return 0, nil, err
		}
		if isPlaylist(key) {
			playlist.Write(b)
		}
	}
	var refs []string
	if isPlaylist(key) {
		refs = playlistRefs(key, playlist.Bytes())
	}
	return info.Size, refs, nil
}

// playlistRefs returns the keys of the segments, init sections and variant
// playlists an HLS playlist references by relative URI.
func playlistRefs(key string, body []byte) []string {
	dir := path.Dir(key)
	var out []string
	add := func(u string) {
		u = strings.TrimSpace(u)
		if u == "" || strings.Contains(u, "://") || strings.HasPrefix(u, "/") {
			return
		}
		if i := strings.IndexAny(u, "?#"); i >= 0 {
			u = u[:i]
		}
		out = append(out, path.Join(dir, u))
	}
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "":
		case strings.HasPrefix(line, "#EXT-X-MAP:") || strings.HasPrefix(line, "#EXT-X-MEDIA:"):
			if _, rest, ok := strings.Cut(line, `URI="`); ok {
				if u, _, ok := strings.Cut(rest, `"`); ok {
					add(u)
				}
			}
		case strings.HasPrefix(line, "#"):
		default:
			add(line)
		}
	}
	return out
}

func (s *Server) serveWarm(w http.ResponseWriter, r *http.Request) {
	var req WarmRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	if len(req.Keys) == 0 || len(req.Keys) > 10000 {
		writeProblem(w, r, http.StatusBadRequest, "bad-warm", "list between 1 and 10000 keys")
		return
	}
	start := time.Now()
	res := s.Warm(r.Context(), req.Keys)
	s.log.Info("warm", "keys", len(req.Keys), "objects", res.Objects, "bytes", res.Bytes, "failed", len(res.Failed), "took", time.Since(start))
	status := http.StatusOK
	if len(res.Failed) > 0 {
		status = http.StatusMultiStatus
	}
	writeJSON(w, status, res)
}

// TierStats describes one cache tier's fill.
type TierStats struct {
	Bytes  int64   `json:"bytes"`
	Budget int64   `json:"budget"`
	Items  int     `json:"items"`
	Fill   float64 `json:"fill"`
}

// Stats is the /stats document steering polls (cf. ATC astats).
type Stats struct {
	Name           string     `json:"name"`
	Region         string     `json:"region"`
	UptimeSeconds  float64    `json:"uptime_seconds"`
	Connections    int64      `json:"connections"`
	Requests       int64      `json:"requests"`
	Hits           int64      `json:"hits"`
	Misses         int64      `json:"misses"`
	StaleServed    int64      `json:"stale_served"`
	HitRatio       float64    `json:"hit_ratio"`
	OriginFetches  int64      `json:"origin_fetches"`
	BytesOutPerSec float64    `json:"bytes_out_per_sec"`
	BytesInPerSec  float64    `json:"bytes_in_per_sec"`
	CPULoad        float64    `json:"cpu_load"`         // 0..1, this POP process's share of all CPUs (/proc/self/stat)
	MachineCPULoad float64    `json:"machine_cpu_load"` // 0..1, busy share of all CPUs (/proc/stat)
	LoadAvg1       float64    `json:"load_avg_1"`       // /proc/loadavg
	NetworkLoad    float64    `json:"network_load"`     // egress / capacity, 0..1
	Objects        int        `json:"objects"`
	Memory         TierStats  `json:"memory"`
	Disk           *TierStats `json:"disk,omitempty"`
	Synthetic      bool       `json:"synthetic,omitempty"`
}

// Snapshot returns the current /stats document.
func (s *Server) Snapshot() Stats {
	hits, miss := s.st.hits.Load(), s.st.miss.Load()
	st := Stats{Name: s.cfg.Name, Region: s.cfg.Region, UptimeSeconds: s.cfg.Clock.Since(s.st.started).Seconds(),
		Connections: s.st.conns.Load(), Requests: s.st.requests.Load(), Hits: hits, Misses: miss,
		StaleServed: s.st.stale.Load(), OriginFetches: s.st.originFetches.Load(), Objects: s.store.objectCount()}
	if hits+miss > 0 {
		st.HitRatio = float64(hits) / float64(hits+miss)
	}
	s.st.mu.Lock()
	st.BytesOutPerSec, st.BytesInPerSec, st.CPULoad, st.LoadAvg1 = s.st.outRate, s.st.inRate, s.st.cpu, s.st.load1
	st.MachineCPULoad = s.st.machineCPU
	st.NetworkLoad = st.BytesOutPerSec / s.cfg.EgressCapacity
	if s.st.injected {
		st.Synthetic = true
		if s.st.injectCPU >= 0 {
			st.CPULoad = s.st.injectCPU
		}
		if s.st.injectN >= 0 {
			st.NetworkLoad = s.st.injectN
		}
	}
	s.st.mu.Unlock()
	mb := int64(s.store.mem.WeightedSize())
	st.Memory = TierStats{Bytes: mb, Budget: s.cfg.MemoryBytes, Items: s.store.mem.EstimatedSize(), Fill: float64(mb) / float64(s.cfg.MemoryBytes)}
	if s.store.disk != nil {
		b, n := s.store.disk.usage()
		st.Disk = &TierStats{Bytes: b, Budget: s.cfg.DiskBytes, Items: n, Fill: float64(b) / float64(s.cfg.DiskBytes)}
	}
	return st
}

func (s *Server) serveStats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Snapshot())
}

// statsGuard puts /stats behind MetricsToken, as /metrics is. ConfigFromMap
// requires METRICS_TOKEN, so every POP started from configuration has one; a
// POP a Go caller builds without one (tests) keeps /stats open, with a warning.
func (s *Server) statsGuard(h http.Handler) http.Handler {
	if s.cfg.MetricsToken == "" {
		s.log.Warn("edge /stats is open: no MetricsToken (METRICS_TOKEN) configured")
		return h
	}
	return server.Protected(s.cfg.MetricsToken, h)
}

type metrics struct {
	requests *prometheus.CounterVec
	// byState are requests' children for hit, miss and stale, resolved once
	// (a label lookup per request showed in the hit path's profile).
	byState       [3]prometheus.Counter
	denied        *prometheus.CounterVec
	originFetches prometheus.Counter
	originErrors  prometheus.Counter
	purged        prometheus.Counter
}

func newMetrics(reg *prometheus.Registry, s *Server) metrics {
	labels := prometheus.Labels{"pop": s.cfg.Name}
	m := metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "overture_edge_requests_total",
			Help: "Media requests by cache outcome.", ConstLabels: labels}, []string{"cache"}),
		denied: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "overture_edge_denied_total",
			Help: "Media requests refused, by reason.", ConstLabels: labels}, []string{"reason"}),
		originFetches: prometheus.NewCounter(prometheus.CounterOpts{Name: "overture_edge_origin_fetches_total",
			Help: "Origin GETs (slices and revalidations).", ConstLabels: labels}),
		originErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "overture_edge_origin_errors_total",
			Help: "Failed origin GETs.", ConstLabels: labels}),
		purged: prometheus.NewCounter(prometheus.CounterOpts{Name: "overture_edge_purged_objects_total",
			Help: "Objects dropped by purge.", ConstLabels: labels}),
	}
	for st := range m.byState {
		m.byState[st] = m.requests.WithLabelValues(strings.ToLower(cacheState(st).String()))
	}
	gauges := []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "overture_edge_memory_bytes", Help: "Bytes in the memory tier.", ConstLabels: labels},
			func() float64 { return float64(s.store.mem.WeightedSize()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "overture_edge_connections", Help: "Open client connections.", ConstLabels: labels},
			func() float64 { return float64(s.st.conns.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "overture_edge_bytes_out_total", Help: "Body bytes sent to clients.", ConstLabels: labels},
			func() float64 { return float64(s.st.bytesOut.Load()) }),
	}
	for _, c := range append([]prometheus.Collector{m.requests, m.denied, m.originFetches, m.originErrors, m.purged}, gauges...) {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				panic(fmt.Sprintf("edge metrics: %v", err))
			}
		}
	}
	return m
}
