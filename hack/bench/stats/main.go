// Command stats is the listening-statistics benchmark driver
// (hack/bench/stats.sh runs it). In one run, on one machine:
//
//  1. it generates -listens listens with internal/listengen (fixed seed:
//     Zipf popularity, taste clusters, daily and weekly seasonality,
//     sessions, skips) into a compact in-memory array, computing each
//     listen's id as the listens service does;
//  2. for each store (-backends: postgres, clickhouse), it bulk-loads the
//     same rows through stats.Store.Write (the stats-writer's path, in large
//     batches) and measures the rate and the bytes per listen on disk;
//  3. it times every query the product runs against that store, client side
//     (the Store call) and server side (PostgreSQL: the durations the server
//     logs for the call's statements; chDB: the engine's own elapsed time —
//     chDB runs in this process, so client and server share the CPU and
//     there is no socket);
//  4. end to end (-e2e, e2e.go): the embedded platform as `make run` starts
//     it, listeners POST /v1/listens in batches of 100 through the gateway,
//     the listens service publishes to the broker, the stats-writer stores;
//     listens/s and latency until the listens are queryable, beside the bare
//     store's bulk insert of the same rows on the same server.
//
// It prints a markdown section on stdout; progress goes to stderr.
package main

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/listengen"
	"github.com/overture-music/overture/internal/listens"
	"github.com/overture-music/overture/internal/stats"
)

var (
	nListens  = flag.Int64("listens", 10_000_000, "listens to generate and load")
	listeners = flag.Int("listeners", 100_000, "listeners")
	artists   = flag.Int("artists", 5_000, "artists")
	tracks    = flag.Int("tracks", 50_000, "tracks")
	backends  = flag.String("backends", "postgres,clickhouse", "stores to measure, comma-separated")
	batch     = flag.Int("batch", 10_000, "rows per Store.Write in the bulk load")
	writers   = flag.Int("writers", 2, "concurrent writers in the bulk load")
	samples   = flag.Int("samples", 200, "timed calls per query (fewer when -query-budget runs out)")
	budget    = flag.Duration("query-budget", 30*time.Second, "most time spent timing one query on one store")
	e2eN      = flag.Int("e2e", 200_000, "listens submitted end to end (0: skip)")
	e2eOn     = flag.String("e2e-backends", "postgres,clickhouse", "STATS_BACKEND values to run end to end with, comma-separated")
	e2eConc   = flag.Int("e2e-clients", 32, "concurrent submitting clients end to end")
	e2eTime   = flag.Duration("e2e-time", 90*time.Second, "most time spent submitting end to end")
	workDir   = flag.String("dir", "", "working directory for the stores' data (default: a new temporary one, removed after)")
)

// Start and End of the generated year; queries run as of End.
var (
	genStart = time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC)
	genEnd   = genStart.AddDate(1, 0, 0)
)

func main() {
	flag.Parse()
	ctx := context.Background()
	dir := *workDir
	if dir == "" {
		d, err := os.MkdirTemp("", "overture-bench-stats-")
		must(err)
		dir = d
		defer os.RemoveAll(dir)
		cleanups = append(cleanups, func() { _ = os.RemoveAll(d) })
	}
	must(os.Chmod(dir, 0o755)) // PostgreSQL runs as its own user
	go func() {                // interrupted (timeout sends TERM): clean up as a failure does
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		must(fmt.Errorf("interrupted: %v", <-sig))
	}()

	var md strings.Builder
	step(fmt.Sprintf("generating %d listens", *nListens))
	ds := generate(ctx)
	fmt.Fprintf(&md, "## Data\n\n`internal/listengen`, seed 1: %d listeners, %d artists, %d tracks in %d taste clusters, **%s listens** from %s to %s (daily and weekly seasonality, sessions, %.1f%% skips). Generated at %s listens/s (one goroutine, listen ids — SHA-256 as the listens service computes them — included); held in memory as %d-byte records, so the loads below read, not generate.\n\n",
		*listeners, *artists, *tracks, ds.gen.Config().Clusters, count(*nListens), genStart.Format(time.DateOnly), genEnd.Format(time.DateOnly),
		100*float64(ds.skips)/float64(len(ds.recs)), count(int64(float64(len(ds.recs))/ds.genTime.Seconds())), recSize)

	var results []*result
	for _, name := range strings.Split(*backends, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		b, err := openBackend(ctx, name, dir)
		must(err)
		b.close = sync.OnceFunc(b.close)
		cleanups = append(cleanups, b.close)
		r := &result{name: b.name}
		results = append(results, r)
		step(fmt.Sprintf("%s: bulk load", b.name))
		r.load = bulkLoad(ctx, b.store, int64(len(ds.recs)), *batch, *writers, func(i, j int64) []stats.Row { return ds.rows(ds.recs[i:j]) })
		step(fmt.Sprintf("%s: %d listens in %s (%.0f/s); settling", b.name, r.load.n, r.load.wall.Round(time.Millisecond), r.load.rate()))
		r.settle, r.storage = b.settle(ctx)
		r.queries = runQueries(ctx, b, ds)
		b.close()
	}
	writeLoad(&md, results)
	writeQueries(&md, results)
	if *e2eN > 0 {
		for _, name := range strings.Split(*e2eOn, ",") {
			if name = strings.TrimSpace(name); name != "" {
				step("end to end on " + name)
				writeE2E(&md, endToEnd(ctx, dir, name))
			}
		}
	}
	writeGoals(&md, results)
	fmt.Print(md.String())
}

// recSize is the size of rec in memory.
const recSize = 36

// rec is one generated listen, compactly: positions into the generator's
// listeners and tracks, seconds since genStart, and its listen id.
type rec struct {
	id     [16]byte
	user   uint32
	track  uint32
	at     uint32
	played uint32
	flags  uint8 // 1 skipped, 2 premium
}

type dataset struct {
	gen     *listengen.Generator
	recs    []rec
	genTime time.Duration
	skips   int
}

func generate(ctx context.Context) *dataset {
	g, err := listengen.New(listengen.Config{Seed: 1, Listeners: *listeners, Artists: *artists, Tracks: *tracks,
		Listens: *nListens, Start: genStart, End: genEnd})
	must(err)
	ds := &dataset{gen: g, recs: make([]rec, 0, *nListens)}
	ls, ts := g.Listeners(), g.Tracks()
	start := time.Now()
	must(g.Each(ctx, func(l listengen.Listen) error {
		r := rec{user: uint32(l.User), track: uint32(l.Track), at: uint32(l.At.Unix() - genStart.Unix()), played: uint32(l.PlayedMS)}
		if l.Skipped {
			r.flags |= 1
			ds.skips++
		}
		if l.Premium {
			r.flags |= 2
		}
		id := listens.ListenID(ls[l.User].ID, eventtype.Listen{ListenedAt: l.At.Unix(), TrackID: ts[l.Track].ID})
		if _, err := hex.Decode(r.id[:], []byte(id)); err != nil {
			return err
		}
		ds.recs = append(ds.recs, r)
		return nil
	}))
	ds.genTime = time.Since(start)
	return ds
}

// listen is rec as the listens service would have accepted it.
func (ds *dataset) listen(r rec) (user string, l eventtype.Listen) {
	t := ds.gen.Tracks()[r.track]
	l = eventtype.Listen{ID: hex.EncodeToString(r.id[:]), ListenedAt: genStart.Unix() + int64(r.at),
		ArtistName: t.ArtistName, TrackName: t.Name, ReleaseName: t.AlbumName, TrackID: t.ID,
		DurationMS: t.DurationMS, PlayedMS: int64(r.played), Skipped: r.flags&1 != 0, Premium: r.flags&2 != 0, Client: "overture"}
	l.Stream, l.Scrobble = listens.Counts(l.DurationMS, l.PlayedMS)
	return ds.gen.Listeners()[r.user].ID, l
}

func (ds *dataset) rows(recs []rec) []stats.Row {
	out := make([]stats.Row, len(recs))
	for i, r := range recs {
		out[i].UserID, out[i].Listen = ds.listen(r)
	}
	return out
}

type loadResult struct {
	n, added int64
	wall     time.Duration
	inWrite  time.Duration // summed over writers
}

func (l loadResult) rate() float64 { return float64(l.n) / l.wall.Seconds() }

// bulkLoad writes rows 0..n (rowsOf builds those from i to j) through
// store.Write, size rows a call, conc calls at a time, in order.
func bulkLoad(ctx context.Context, store stats.Store, n int64, size, conc int, rowsOf func(i, j int64) []stats.Row) loadResult {
	var next, added, inWrite atomic.Int64
	var wg sync.WaitGroup
	var firstErr error
	var once sync.Once
	start := time.Now()
	lastReport := atomic.Int64{}
	for range conc {
		wg.Go(func() {
			for {
				i := next.Add(int64(size)) - int64(size)
				if i >= n {
					return
				}
				rows := rowsOf(i, min(i+int64(size), n))
				t := time.Now()
				stored, err := store.Write(ctx, rows)
				inWrite.Add(int64(time.Since(t)))
				if err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				added.Add(int64(stored))
				if done := i / 1_000_000; done > lastReport.Load() && n >= 2_000_000 {
					lastReport.Store(done)
					slog.Info("loading", "listens", i, "rate", fmt.Sprintf("%.0f/s", float64(i)/time.Since(start).Seconds()))
				}
			}
		})
	}
	wg.Wait()
	must(firstErr)
	return loadResult{n: n, added: added.Load(), wall: time.Since(start), inWrite: time.Duration(inWrite.Load())}
}

type result struct {
	name    string
	load    loadResult
	settle  string // what was done after the load, and how long it took
	storage storage
	queries []queryResult
}

// storage is what a store holds on disk for the listens.
type storage struct {
	total  int64  // bytes of the listens' table(s) and indexes
	detail string // a breakdown
}

func step(s string) { slog.Info(s) }

// cleanups run before a failed run exits (deferred calls do not run on
// os.Exit): the stores are stopped and the working directory removed.
var cleanups []func()

func must(err error) {
	if err != nil {
		slog.Error("bench failed", "error", err)
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
		os.Exit(1)
	}
}

// count formats n with thousands separators.
func count(n int64) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func init() {
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})))
}
