package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jonboulle/clockwork"

	recommendfn "github.com/overture-music/overture/functions/recommend"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/infra"
	"github.com/overture-music/overture/internal/listengen"
	"github.com/overture-music/overture/internal/listens"
	"github.com/overture-music/overture/internal/postgres"
	"github.com/overture-music/overture/internal/recommend"
	"github.com/overture-music/overture/internal/recommend/artifact"
	"github.com/overture-music/overture/internal/recommend/job"
	"github.com/overture-music/overture/internal/recommend/result"
	"github.com/overture-music/overture/internal/stats"
)

// wholeFigures is what the whole recompute's child reports.
type wholeFigures struct {
	// The load into the statistics store (the parent's, not timed as
	// part of the recompute).
	Loaded         int64
	LoadS          float64
	VacuumS        float64
	StatsMB        float64
	Run            recommendfn.Run
	FirstRowS      float64 // Scan: until the server's first sorted row
	FoldS          float64 // Scan: time inside the callback (the fold)
	ScanRows       int64
	PeakRSSMB      float64
	CPUS           float64
	PGCPUS         float64 // the PostgreSQL server's CPU time during the recompute
	SimilarMB      float64
	FactorsMB      float64
	ResultsMB      float64
	TrackRows      int64
	ArtistRows     int64
	FactorsFirstMS float64
	Refresh        []serveFigures
	RefreshEmpty   int
	PlaysMean      float64
}

// timedStats is the statistics store with Scan timed: the wait for the
// first row (PostgreSQL sorts the window) and the time in the callback.
type timedStats struct {
	stats.Store
	first, in time.Duration
	rows      int64
}

func (s *timedStats) Scan(ctx context.Context, from, to time.Time, fn func(stats.Row) error) error {
	t0 := time.Now()
	return s.Store.Scan(ctx, from, to, func(r stats.Row) error {
		t := time.Now()
		if s.rows == 0 {
			s.first = t.Sub(t0)
		}
		s.rows++
		err := fn(r)
		s.in += time.Since(t)
		return err
	})
}

func genConfig() listengen.Config {
	start := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	return listengen.Config{Seed: *seed, Listeners: *listeners, Artists: *artists, Tracks: *tracks, Listens: *nListens,
		Start: start, End: start.AddDate(0, 0, 7**weeks), Clusters: *clusters}
}

// whole loads the planted listening into a PostgreSQL statistics store
// (as the stats-writer would have stored it) and runs the recompute
// function's Recompute on it in a child process, then one listener's
// refresh for listeners in turn.
func whole(ctx context.Context, self string) (wholeFigures, error) {
	var f wholeFigures
	dir, err := os.MkdirTemp("", "overture-bench-recompute-")
	if err != nil {
		return f, err
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil { // PostgreSQL runs as its own user
		return f, err
	}
	var group infra.Group
	defer group.Stop() //nolint:errcheck
	pg, err := infra.StartPostgres(ctx, infra.PostgresOptions{Dir: filepath.Join(dir, "pg"), Fast: true,
		Settings: map[string]string{"shared_buffers": "512MB", "max_wal_size": "4GB"}})
	if err != nil {
		return f, err
	}
	group.Add(pg.Process)
	url := pg.URL("postgres")
	pool, err := postgres.OpenMigrated(ctx, url, result.Migrate)
	if err != nil {
		return f, err
	}
	defer pool.Close()
	if err := stats.Migrate(ctx, pool.Pool); err != nil {
		return f, err
	}
	t0 := time.Now()
	if f.Loaded, err = load(ctx, pool.Pool); err != nil {
		return f, err
	}
	f.LoadS = time.Since(t0).Seconds()
	t0 = time.Now()
	if _, err := pool.Exec(ctx, `VACUUM ANALYZE stats_listen`); err != nil {
		return f, err
	}
	f.VacuumS = time.Since(t0).Seconds()
	if err := pool.QueryRow(ctx, `SELECT sum(pg_total_relation_size(inhrelid))/1e6 FROM pg_inherits WHERE inhparent = 'stats_listen'::regclass`).Scan(&f.StatsMB); err != nil {
		return f, err
	}
	fmt.Fprintf(os.Stderr, "recommend bench: %d listens stored in %.0f s (vacuum %.0f s, %.0f MB)\n", f.Loaded, f.LoadS, f.VacuumS, f.StatsMB)

	args := append([]string{}, os.Args[1:]...)
	args = append(args, "-child", "whole", "-pg-url", url)
	cmd := exec.CommandContext(ctx, self, args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return f, fmt.Errorf("child whole: %w", err)
	}
	loaded, loadS, vacuumS, statsMB := f.Loaded, f.LoadS, f.VacuumS, f.StatsMB
	if err := json.Unmarshal(out, &f); err != nil {
		return f, fmt.Errorf("child whole: %w (%q)", err, out)
	}
	f.Loaded, f.LoadS, f.VacuumS, f.StatsMB = loaded, loadS, vacuumS, statsMB
	return f, nil
}

// load stores the generator's listens in stats_listen: the rows the
// stats-writer's Store.Write stores, with COPY (the first row of each
// month through Store.Write, which creates the month's partition). The
// dashboards' indexes (by track, by artist) are dropped first: neither
// the recompute nor the refresh reads them, and the load is faster.
func load(ctx context.Context, pool *pgxpool.Pool) (int64, error) {
	if _, err := pool.Exec(ctx, `DROP INDEX stats_listen_track; DROP INDEX stats_listen_artist`); err != nil {
		return 0, err
	}
	g, err := listengen.New(genConfig())
	if err != nil {
		return 0, err
	}
	st := stats.NewPG(pool)
	tracks := g.Tracks()
	months := map[time.Time]bool{}
	cols := []string{"listen_id", "user_id", "listened_at", "artist_name", "track_name", "release_name", "track_id",
		"duration_ms", "played_ms", "stream", "scrobble", "skipped", "premium", "client"}
	var batch [][]any
	var n int64
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		c, err := pool.CopyFrom(ctx, pgx.Identifier{"stats_listen"}, cols, pgx.CopyFromRows(batch))
		n += c
		batch = batch[:0]
		return err
	}
	err = g.Each(ctx, func(l listengen.Listen) error {
		tr := tracks[l.Track]
		stream, scrobble := listens.Counts(l.DurationMS, l.PlayedMS)
		el := eventtype.Listen{ListenedAt: l.At.Unix(), ArtistName: tr.ArtistName, TrackName: tr.Name, ReleaseName: tr.AlbumName, TrackID: tr.ID,
			DurationMS: l.DurationMS, PlayedMS: l.PlayedMS, Stream: stream, Scrobble: scrobble, Skipped: l.Skipped, Premium: l.Premium, Client: "bench"}
		el.ID = listens.ListenID(l.UserID, el)
		m := time.Date(l.At.Year(), l.At.Month(), 1, 0, 0, 0, 0, time.UTC)
		if !months[m] {
			months[m] = true
			k, err := st.Write(ctx, []stats.Row{{UserID: l.UserID, Listen: el}})
			n += int64(k)
			return err
		}
		batch = append(batch, []any{el.ID, l.UserID, l.At, el.ArtistName, el.TrackName, el.ReleaseName, el.TrackID,
			el.DurationMS, el.PlayedMS, el.Stream, el.Scrobble, el.Skipped, el.Premium, el.Client})
		if len(batch) == 50_000 {
			return flush()
		}
		return nil
	})
	if err != nil {
		return n, err
	}
	return n, flush()
}

// wholeChild is the child process: the recompute function's Recompute at
// the end of the generated listening, as a tick would run it (its peak RSS
// is the function's), then one listener's refresh.
func wholeChild(ctx context.Context) (wholeFigures, error) {
	var f wholeFigures
	cfg := genConfig()
	pool, err := pgxpool.New(ctx, *pgURL)
	if err != nil {
		return f, err
	}
	defer pool.Close()
	st := &timedStats{Store: stats.NewPG(pool)}
	fn := recommendfn.New()
	fn.Pool, fn.Stats, fn.Log = pool, st, slog.New(slog.DiscardHandler)
	// The refresh's results are made an hour after the recompute's (so
	// they replace them, as a later refresh does).
	fn.Clock = clockwork.NewFakeClockAt(cfg.End.Add(time.Hour))
	if err := fn.Start(ctx, map[string]string{"DATABASE_URL": *pgURL}); err != nil {
		return f, err
	}
	defer fn.Stop(ctx) //nolint:errcheck
	if *cpuProf != "" {
		fh, err := os.Create(*cpuProf)
		if err != nil {
			return f, err
		}
		if err := pprof.StartCPUProfile(fh); err != nil {
			return f, err
		}
	}
	postmaster, err := postmasterPID(ctx, pool)
	if err != nil {
		return f, err
	}
	pgBefore := serverCPU(postmaster)
	f.Run, err = fn.Recompute(ctx, cfg.End)
	if *cpuProf != "" {
		pprof.StopCPUProfile()
	}
	if err != nil {
		return f, err
	}
	f.PGCPUS = serverCPU(postmaster) - pgBefore
	f.PeakRSSMB, f.CPUS = peakRSS(), cpuSeconds()
	f.FirstRowS, f.FoldS, f.ScanRows = st.first.Seconds(), st.in.Seconds(), st.rows
	fmt.Fprintf(os.Stderr, "recommend bench: whole recompute %.0f s, %.0f MB, %+v\n", f.Run.Took.Seconds(), f.PeakRSSMB, f.Run.Phases)
	for _, q := range []struct {
		sql string
		v   any
	}{
		{`SELECT pg_total_relation_size('recommend_similar')/1e6`, &f.SimilarMB},
		{`SELECT pg_total_relation_size('recommend_factors')/1e6`, &f.FactorsMB},
		{`SELECT pg_total_relation_size('recommend_result')/1e6`, &f.ResultsMB},
		{`SELECT count(*) FROM recommend_similar WHERE kind = 'track'`, &f.TrackRows},
		{`SELECT count(*) FROM recommend_similar WHERE kind = 'artist'`, &f.ArtistRows},
	} {
		if err := pool.QueryRow(ctx, q.sql).Scan(q.v); err != nil {
			return f, err
		}
	}
	err = refreshLatencies(ctx, &f, pool, fn, st.Store)
	return f, err
}

// postmasterPID is the PostgreSQL server's process id (the first line of
// postmaster.pid in its data directory).
func postmasterPID(ctx context.Context, pool *pgxpool.Pool) (int, error) {
	var dir string
	if err := pool.QueryRow(ctx, `SHOW data_directory`).Scan(&dir); err != nil {
		return 0, err
	}
	b, err := os.ReadFile(filepath.Join(dir, "postmaster.pid"))
	if err != nil {
		return 0, err
	}
	first, _, _ := strings.Cut(string(b), "\n")
	return strconv.Atoi(strings.TrimSpace(first))
}

// serverCPU is the CPU time (s) the PostgreSQL server has used: the
// postmaster's with its exited children's, and its live children's
// (connections, checkpointer, writers, autovacuum).
func serverCPU(postmaster int) float64 {
	// stat returns the fields after the command: state, ppid, …
	stat := func(pid string) []string {
		b, err := os.ReadFile("/proc/" + pid + "/stat")
		if err != nil {
			return nil
		}
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			return nil
		}
		return strings.Fields(string(b[i+1:]))
	}
	ticks := func(fs []string, from, to int) float64 {
		t := 0.0
		for k := from; k <= to && k < len(fs); k++ {
			v, _ := strconv.ParseFloat(fs[k], 64)
			t += v
		}
		return t / 100 // USER_HZ
	}
	pm := strconv.Itoa(postmaster)
	total := ticks(stat(pm), 11, 14) // utime, stime, cutime, cstime
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if fs := stat(e.Name()); len(fs) > 12 && fs[1] == pm {
			total += ticks(fs, 11, 12)
		}
	}
	return total
}

// refreshLatencies measures one listener's refresh at this size: the
// parts of the job (their last plays, artifact.Store.Recommend, storing
// the result) and the whole job as the function runs it, beside reading
// the listener's stored result (the reference), for distinct random
// listeners one at a time.
func refreshLatencies(ctx context.Context, f *wholeFigures, pool *pgxpool.Pool, fn *recommendfn.Function, st stats.Store) error {
	var users []string
	rows, err := pool.Query(ctx, `SELECT user_id FROM recommend_result ORDER BY user_id`)
	if err != nil {
		return err
	}
	if users, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(uint64(*seed), 14))
	rng.Shuffle(len(users), func(i, j int) { users[i], users[j] = users[j], users[i] })
	n := min(*refreshN, (len(users)-2*refreshWarm)/2)
	if n <= 0 {
		return fmt.Errorf("only %d listeners with results", len(users))
	}
	at := fn.Clock.Now().UTC()
	store := &artifact.Store{Pool: pool}
	results := result.Store{Pool: pool}
	plays := func(u string) ([]recommend.Listen, error) {
		ps, err := st.Recent(ctx, u, recommendfn.RefreshListens)
		if err != nil {
			return nil, err
		}
		ls := make([]recommend.Listen, 0, len(ps))
		for _, p := range ps {
			ls = append(ls, recommend.Listen{User: u, Track: p.TrackID, Artist: p.ArtistName, At: p.ListenedAt, Scrobble: p.Scrobble, Skipped: p.Skipped})
		}
		return ls, nil
	}
	// The first Recommend reads the stored factors (then cached per
	// version, as in the function's process).
	ls, err := plays(users[0])
	if err != nil {
		return err
	}
	t := time.Now()
	if _, _, err := store.Recommend(ctx, users[0], ls, at, recommendfn.Window, recommendfn.Size); err != nil {
		return err
	}
	f.FactorsFirstMS = float64(time.Since(t).Microseconds()) / 1000
	const (
		get     = "read the listener's stored result (result.Store.Get: one primary-key read) — the reference"
		recent  = "their last 1,000 plays (stats.Store.Recent)"
		rec     = "artifact.Store.Recommend (fold-in against the stored factors, catalogue scored, neighbour sums)"
		put     = "store the result (result.Store.Put of one)"
		jobPath = "the whole refresh job (the function's Handle of RefreshRequested: job.Begin, the plays, Recommend, Put, Get, job.Finish)"
	)
	lat := map[string][]time.Duration{}
	timed := func(name string, warm bool, op func() error) error {
		t := time.Now()
		err := op()
		if !warm {
			lat[name] = append(lat[name], time.Since(t))
		}
		return err
	}
	sizes := map[string]int{}
	var playsN int
	for k, u := range users[:n+refreshWarm] {
		warm := k < refreshWarm
		var r result.Result
		var ok bool
		if err := timed(get, warm, func() error {
			got, err := results.Get(ctx, u)
			sizes[get] = len(got.Body)
			return err
		}); err != nil {
			return err
		}
		if err := timed(recent, warm, func() (err error) { ls, err = plays(u); return err }); err != nil {
			return err
		}
		if err := timed(rec, warm, func() (err error) {
			r, ok, err = store.Recommend(ctx, u, ls, at, recommendfn.Window, recommendfn.Size)
			return err
		}); err != nil {
			return err
		}
		if !warm {
			playsN += len(ls)
		}
		if !ok {
			f.RefreshEmpty++
			continue
		}
		sizes[rec], sizes[put] = len(r.Body), len(r.Body)
		if err := timed(put, warm, func() error { _, err := results.Put(ctx, []result.Result{r}); return err }); err != nil {
			return err
		}
	}
	f.PlaysMean = float64(playsN) / float64(n)
	for k, u := range users[n+refreshWarm : 2*n+2*refreshWarm] {
		var j job.Job
		if err := postgres.InTx(ctx, pool, func(tx pgx.Tx) (err error) {
			j, _, err = job.Enqueue(ctx, tx, u, job.Requested, at)
			return err
		}); err != nil {
			return err
		}
		if err := timed(jobPath, k < refreshWarm, func() error { _, err := fn.Handle(ctx, job.Event(j)); return err }); err != nil {
			return err
		}
		got, err := job.Get(ctx, pool, u, j.ID)
		if err != nil {
			return err
		}
		if got.State != job.Done {
			return fmt.Errorf("job %s of %s: %s (%s)", j.ID, u, got.State, got.Error)
		}
	}
	for _, name := range []string{get, recent, rec, put, jobPath} {
		d := lat[name]
		slices.Sort(d)
		f.Refresh = append(f.Refresh, serveFigures{Name: name, N: len(d), P50: d[len(d)/2], P99: d[len(d)*99/100], Max: d[len(d)-1], Bytes: sizes[name]})
	}
	return nil
}

func reportWhole(f wholeFigures) {
	r := f.Run
	fmt.Printf("## The whole recompute as the function runs it, and one listener's refresh\n\n")
	fmt.Printf("The same planted listening (%d listeners × %d tracks × %d listens, seed %d, %d weeks) stored in a PostgreSQL statistics store as the stats-writer stores it (fsync off, shared_buffers 512MB; loaded with COPY in %.0f s and VACUUM ANALYZE in %.0f s, not part of the recompute: %.0f MB with the primary key, the by-listener and time indexes; the dashboards' by-track and by-artist indexes, which neither the recompute nor the refresh reads, were dropped to load faster). Then `recommendfn.Function.Recompute` — what a recompute tick runs: Store.Scan of the whole window (every listen trains: no test week here), the matrix, ALS, track and artist co-occurrence, the stored models (internal/recommend/artifact), every listener's result ranked and stored — in a child process on %d workers, GOMAXPROCS=2. Its peak RSS is the function process's (PostgreSQL's own memory is not in it).\n\n",
		*listeners, *tracks, *nListens, *seed, *weeks, f.LoadS, f.VacuumS, f.StatsMB, *workers)
	fmt.Printf("%d listens read, %d folded (those with a track id that are a scrobble or a skip), %d listeners; %d results stored (%.0f MB in recommend_result), %d similar-items rows (%d tracks', %d artists': %.0f MB in recommend_similar), the track factors %.1f MB in recommend_factors.\n\n",
		f.ScanRows, r.Listens, r.Listeners, r.Stored, f.ResultsMB, r.Similar, f.TrackRows, f.ArtistRows, f.SimilarMB, f.FactorsMB)
	fmt.Println("| phase | wall | share |")
	fmt.Println("|---|---:|---:|")
	for _, p := range r.Phases {
		extra := ""
		switch p.Name {
		case "read listens":
			extra = fmt.Sprintf(" (Store.Scan: %.1f s until PostgreSQL's first sorted row, %.1f s folding in the callback)", f.FirstRowS, f.FoldS)
		case "rank and store results":
			extra = fmt.Sprintf(" (of which %.1f s in result.Store.Put, overlapping the ranking)", r.PutResults.Seconds())
		case "store models":
			extra = " (artifact.Store.Put: neighbour lists and track factors, one transaction)"
		}
		fmt.Printf("| %s%s | %.1f s | %.0f%% |\n", p.Name, extra, p.Took.Seconds(), 100*p.Took.Seconds()/r.Took.Seconds())
	}
	fmt.Printf("| **the whole recompute** | **%.1f s** | CPU time: the function's process %.0f s, the PostgreSQL server %.0f s (together %.0f s of the 2 cores' %.0f s in that wall time); peak RSS **%.0f MB** |\n\n",
		r.Took.Seconds(), f.CPUS, f.PGCPUS, f.CPUS+f.PGCPUS, 2*r.Took.Seconds(), f.PeakRSSMB)
	fmt.Printf("- The whole recompute under 10 min on 2 cores: %s (%.1f s, %.2f× the goal); under 4 GiB: %s (%.0f MB).\n\n", verdict(r.Took < 10*time.Minute), r.Took.Seconds(), r.Took.Seconds()/600, verdict(f.PeakRSSMB < 4096), f.PeakRSSMB)
	fmt.Printf("One listener's refresh after that recompute, at this size: distinct random listeners with a stored result, one at a time (closed loop) after %d warm-up listeners, in the same process; their plays average %.0f (at most 1,000 read). The first Recommend of the process also read the stored factors: %.1f ms. %d listeners had no counted play in the window.\n\n", refreshWarm, f.PlaysMean, f.FactorsFirstMS, f.RefreshEmpty)
	fmt.Println("| operation | requests | bytes | p50 | p99 | max |")
	fmt.Println("|---|---:|---:|---:|---:|---:|")
	for _, x := range f.Refresh {
		b := "—"
		if x.Bytes > 0 {
			b = fmt.Sprint(x.Bytes)
		}
		fmt.Printf("| %s | %d | %s | %.2f ms | %.2f ms | %.2f ms |\n", x.Name, x.N, b, ms(x.P50), ms(x.P99), ms(x.Max))
	}
	if len(f.Refresh) == 5 {
		ref, rec, jp := f.Refresh[0], f.Refresh[2], f.Refresh[4]
		fmt.Printf("\n- artifact.Store.Recommend: p50 %.2f ms, p99 %.2f ms — %.1f× and %.1f× the stored result's read (%.2f ms, %.2f ms); the whole job p99 %.2f ms.\n",
			ms(rec.P50), ms(rec.P99), float64(rec.P50)/float64(ref.P50), float64(rec.P99)/float64(ref.P99), ms(ref.P50), ms(ref.P99), ms(jp.P99))
	}
}
