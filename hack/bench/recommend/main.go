// Command recommend is the recommendation benchmark driver
// (hack/bench/recommend.sh runs it): a full recompute at 100,000 listeners ×
// 50,000 tracks × 10 million listens of planted listening (internal/
// listengen), on the workers given (2 cores here), for every model:
//
//   - fold: the listens folded into the interaction matrix (the time split's
//     training side), timed apart from the generator that produces them;
//   - train: the model itself;
//   - top 50 for every listener with history, over the whole catalogue minus
//     what they played — what the batch job stores;
//   - the offline evaluation of the same model on the held-out last week:
//     precision@10, recall@50, NDCG@10, coverage.
//
// Each model runs in its own child process (the driver re-executes itself
// with -child), so the peak resident memory it reports (VmHWM of
// /proc/self/status) is that model's recompute alone.
//
// Then (-whole, whole.go) the whole recompute as the recompute function runs
// it: the same listens loaded into a PostgreSQL statistics store, and
// recommendfn.Function.Recompute in a child process — its phases, peak RSS,
// CPU time (its own and the database server's), the stored models' and
// results' sizes, a CPU profile (-cpuprofile) — and one listener's refresh at
// that size (their plays, artifact.Store.Recommend, storing the result, the
// whole refresh job) beside reading their stored result. Then the serving
// part (serve.go). It prints markdown sections on stdout.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/overture-music/overture/internal/listengen"
	"github.com/overture-music/overture/internal/listens"
	"github.com/overture-music/overture/internal/recommend"
)

var (
	listeners = flag.Int("listeners", 100_000, "listeners")
	tracks    = flag.Int("tracks", 50_000, "catalogue tracks")
	artists   = flag.Int("artists", 5_000, "artists")
	nListens  = flag.Int64("listens", 10_000_000, "listens")
	weeks     = flag.Int("weeks", 12, "weeks of listening generated; the last one is the test window")
	clusters  = flag.Int("clusters", 20, "planted taste clusters")
	seed      = flag.Int64("seed", 1, "generator seed")
	workers   = flag.Int("workers", 2, "goroutines that train and rank")
	models    = flag.String("models", "popularity,cooccurrence-tracks,cooccurrence-artists,als", "models, comma-separated")
	child     = flag.String("child", "", "internal: run one model (or \"generate\") and print its figures as JSON")
	serveN    = flag.Int("serve-listeners", 10_000, "listeners whose stored results the serving part reads (0: skip it)")
	serveReqs = flag.Int("serve-requests", 5_000, "requests per way of reading in the serving part")
	serveOnly = flag.Bool("serve-only", false, "run only the serving part")
	wholeRun  = flag.Bool("whole", true, "also run the whole recompute as the function runs it (listens in PostgreSQL) and one listener's refresh")
	wholeOnly = flag.Bool("whole-only", false, "run only the whole recompute and the refresh")
	refreshN  = flag.Int("refresh-requests", 1_000, "listeners refreshed per way of measuring the refresh")
	pgURL     = flag.String("pg-url", "", "internal: the statistics store of the whole recompute's child")
	cpuProf   = flag.String("cpuprofile", "", "write a CPU profile of the whole recompute (Recompute only) here")
)

// refreshWarm is how many listeners warm the refresh measurement up.
const refreshWarm = 50

// figures is what a child reports.
type figures struct {
	Model         string
	Listens       int64
	TrainListens  int
	Listeners     int
	Tracks        int
	Entries       int
	MatrixMB      float64
	GenerateFoldS float64
	FoldS         float64
	TrainS        float64
	RecommendS    float64
	Recommended   int64
	EvalS         float64
	Users         int
	P10, R50, N10 float64
	Coverage      float64
	PeakRSSMB     float64
	CPUS          float64
	ModelMB       float64
	ColdUsers     int
}

func main() {
	flag.Parse()
	if *child == "whole" {
		f, err := wholeChild(context.Background())
		must(err)
		must(json.NewEncoder(os.Stdout).Encode(f))
		return
	}
	if *child != "" {
		f, err := run(context.Background(), *child)
		must(err)
		must(json.NewEncoder(os.Stdout).Encode(f))
		return
	}
	if *serveOnly {
		rows, err := serve(context.Background(), *serveN, *serveReqs)
		must(err)
		reportServe(*serveN, rows)
		return
	}
	self, err := os.Executable()
	must(err)
	if *wholeOnly {
		w, err := whole(context.Background(), self)
		must(err)
		reportWhole(w)
		return
	}
	gen, err := spawn(self, "generate")
	must(err)
	var rows []figures
	for _, m := range strings.Split(*models, ",") {
		f, err := spawn(self, m)
		must(err)
		rows = append(rows, f)
	}
	report(gen, rows)
	if *wholeRun {
		fmt.Println()
		w, err := whole(context.Background(), self)
		must(err)
		reportWhole(w)
	}
	if *serveN > 0 {
		fmt.Println()
		srows, err := serve(context.Background(), *serveN, *serveReqs)
		must(err)
		reportServe(*serveN, srows)
	}
}

// spawn runs one model in a child process and reads its figures.
func spawn(self, model string) (figures, error) {
	args := append([]string{}, os.Args[1:]...)
	args = append(args, "-child", model)
	cmd := exec.Command(self, args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return figures{}, fmt.Errorf("child %s: %w", model, err)
	}
	fmt.Fprintf(os.Stderr, "recommend bench: %s: %s", model, out)
	var f figures
	if err := json.Unmarshal(out, &f); err != nil {
		return figures{}, fmt.Errorf("child %s: %w (%q)", model, err, out)
	}
	return f, nil
}

func run(ctx context.Context, model string) (figures, error) {
	start := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	cfg := listengen.Config{Seed: *seed, Listeners: *listeners, Artists: *artists, Tracks: *tracks, Listens: *nListens,
		Start: start, End: start.AddDate(0, 0, 7**weeks), Clusters: *clusters}
	g, err := listengen.New(cfg)
	if err != nil {
		return figures{}, err
	}
	f := figures{Model: model, Listens: cfg.Listens}
	t0 := time.Now()
	if model == "generate" {
		n := int64(0)
		err := g.Each(ctx, func(listengen.Listen) error { n++; return nil })
		f.GenerateFoldS = time.Since(t0).Seconds()
		f.PeakRSSMB = peakRSS()
		f.CPUS = cpuSeconds()
		return f, err
	}
	test := 7 * 24 * time.Hour
	cutoff := cfg.End.Add(-test)
	s := recommend.NewSplitter(cutoff, test, recommend.DefaultWeighting(cutoff))
	gt := g.Tracks()
	for _, tr := range gt {
		s.AddTrack(tr.ID, tr.ArtistID)
	}
	// The generator's listens are buffered in batches and the folding of
	// each batch timed: fold is the recompute's work, generating is not.
	var fold time.Duration
	batch := make([]recommend.Listen, 0, 100_000)
	flush := func() {
		t := time.Now()
		for _, l := range batch {
			s.Add(l)
		}
		fold += time.Since(t)
		batch = batch[:0]
	}
	err = g.Each(ctx, func(l listengen.Listen) error {
		batch = append(batch, recommend.Listen{User: l.UserID, Track: l.TrackID, Artist: gt[l.Track].ArtistID, At: l.At, Scrobble: scrobble(l), Skipped: l.Skipped})
		if len(batch) == cap(batch) {
			flush()
		}
		return nil
	})
	if err != nil {
		return f, err
	}
	flush()
	t := time.Now()
	sp := s.Build()
	fold += time.Since(t)
	f.GenerateFoldS = time.Since(t0).Seconds()
	f.FoldS = fold.Seconds()
	d := sp.Data
	f.TrainListens, f.Listeners, f.Tracks, f.Entries = sp.TrainListens, d.R.Rows, d.R.NCols, d.R.NNZ()
	f.MatrixMB = float64(d.R.Bytes()) / 1e6
	f.ColdUsers = sp.ColdUsers

	t0 = time.Now()
	var m recommend.Model
	switch model {
	case "popularity":
		m = recommend.TrainPopularity(d.R)
	case "cooccurrence-tracks":
		c := recommend.TrainCooccurrence(d.R, recommend.DefaultCooccurrence(*workers))
		f.ModelMB = float64(c.N.Bytes()) / 1e6
		m = c
	case "cooccurrence-artists":
		c := recommend.TrainArtistCooccurrence(d, recommend.DefaultCooccurrence(*workers))
		f.ModelMB = float64(c.N.Bytes()) / 1e6
		m = c
	case "als":
		a, err := recommend.TrainALS(ctx, d.R, recommend.DefaultALS(*workers))
		if err != nil {
			return f, err
		}
		f.ModelMB = float64(a.Bytes()) / 1e6
		m = a
	default:
		return f, fmt.Errorf("unknown model %q", model)
	}
	f.TrainS = time.Since(t0).Seconds()

	// The batch job's output: every listener with history, top 50, kept in
	// memory as the job would hold a batch before writing it.
	t0 = time.Now()
	results := make([][]recommend.Scored, d.R.Rows)
	var n atomic.Int64
	active := make([]int, 0, d.R.Rows)
	for u := 0; u < d.R.Rows; u++ {
		if d.R.Ptr[u+1] > d.R.Ptr[u] {
			active = append(active, u)
		}
	}
	err = recommend.RecommendAll(ctx, m, d.R, active, 50, *workers, func(u int, top []recommend.Scored) error {
		results[u] = top
		n.Add(1)
		return nil
	})
	if err != nil {
		return f, err
	}
	f.RecommendS = time.Since(t0).Seconds()
	f.Recommended = n.Load()

	t0 = time.Now()
	r, err := recommend.Evaluate(ctx, m, sp, *workers)
	if err != nil {
		return f, err
	}
	f.EvalS = time.Since(t0).Seconds()
	f.Users, f.P10, f.R50, f.N10, f.Coverage = r.Users, r.PrecisionAt10, r.RecallAt50, r.NDCGAt10, r.Coverage
	f.PeakRSSMB = peakRSS()
	f.CPUS = cpuSeconds()
	return f, nil
}

// cpuSeconds is the user and system CPU time the process has used: on a
// machine shared with other work, wall time depends on the load, CPU time
// much less.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// peakRSS is the process's peak resident set (VmHWM) in MB.
func peakRSS() float64 {
	fh, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

func report(gen figures, rows []figures) {
	fmt.Printf("## Full recompute: %d listeners × %d tracks × %d listens\n\n", *listeners, *tracks, *nListens)
	if len(rows) > 0 {
		r := rows[0]
		fmt.Printf("Planted listening from internal/listengen (seed %d, %d artists, %d taste clusters, %d weeks); the last week is held out: %d listens train the models (scrobbles and skips; streams that are neither count for nothing), the matrix has %d listeners × %d tracks with %d entries (%.0f MB in CSR). Each model runs in a child process of its own on %d workers: the peak RSS is that whole process (generator, split, matrix, model, every listener's top 50, evaluation). The generator alone takes %.1f s (%.0f s CPU) and %.0f MB; its listens reach the fold in batches of 100,000, and only the folding (and building the matrix) is timed.\n\n",
			*seed, *artists, *clusters, *weeks, r.TrainListens, r.Listeners, r.Tracks, r.Entries, r.MatrixMB, *workers, gen.GenerateFoldS, gen.CPUS, gen.PeakRSSMB)
	}
	fmt.Println("| model | fold listens | train | top 50 for every listener | recompute (fold + train + top 50) | peak RSS | model size | listeners served | CPU time of the whole child (incl. generator and evaluation) |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range rows {
		fold := r.FoldS
		fmt.Printf("| %s | %.1f s | %.1f s | %.1f s | **%.1f s** | **%.0f MB** | %.0f MB | %d | %.0f s |\n", r.Model, fold, r.TrainS, r.RecommendS, fold+r.TrainS+r.RecommendS, r.PeakRSSMB, r.ModelMB, r.Recommended, r.CPUS)
	}
	fmt.Println()
	var base figures
	for _, r := range rows {
		if r.Model == "popularity" {
			base = r
		}
	}
	if len(rows) > 0 {
		fmt.Printf("Offline evaluation (time split; %d listeners with history and new scrobbles in the test week, %d with test scrobbles and no history are the fallback's; ranking over the whole catalogue minus each listener's training tracks):\n\n", rows[0].Users, rows[0].ColdUsers)
	}
	fmt.Println("| model | precision@10 | recall@50 | NDCG@10 | NDCG@10 / popularity | coverage (top 10) | evaluation time |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|")
	for _, r := range rows {
		ratio := "—"
		if base.N10 > 0 {
			ratio = fmt.Sprintf("%.2f×", r.N10/base.N10)
		}
		fmt.Printf("| %s | %.4f | %.4f | %.4f | %s | %.4f | %.1f s |\n", r.Model, r.P10, r.R50, r.N10, ratio, r.Coverage, r.EvalS)
	}
	fmt.Println()
	for _, r := range rows {
		fold := r.FoldS
		total := fold + r.TrainS + r.RecommendS
		fmt.Printf("- %s: recompute under 10 min: %s (%.1f s); under 4 GiB: %s (%.0f MB)", r.Model, verdict(total < 600), total, verdict(r.PeakRSSMB < 4096), r.PeakRSSMB)
		if r.Model != "popularity" && base.N10 > 0 {
			fmt.Printf("; NDCG@10 ≥ 1.5× popularity: %s (%.2f×)", verdict(r.N10 >= 1.5*base.N10), r.N10/base.N10)
		}
		fmt.Println(".")
	}
}

func verdict(ok bool) string {
	if ok {
		return "**met**"
	}
	return "**missed**"
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "recommend bench:", err)
		os.Exit(1)
	}
}

// scrobble applies the statistics' counting rule to a generated play.
func scrobble(l listengen.Listen) bool {
	_, s := listens.Counts(l.DurationMS, l.PlayedMS)
	return s
}
