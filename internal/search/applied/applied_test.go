package applied_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/postgres"
	"github.com/overture-music/overture/internal/search/applied"
	"github.com/overture-music/overture/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func open(t *testing.T) *pgxpool.Pool {
	t.Helper()
	p, err := postgres.Open(t.Context(), testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	if err := applied.Migrate(t.Context(), p.Pool); err != nil {
		t.Fatal(err)
	}
	return p.Pool
}

// step is one thing the indexer does: record a report or applied changes.
type step struct {
	report  *applied.Progress
	applied []applied.Change
	// want is the watermark after the step (and its Advance).
	want uint64
}

func rep(from, to uint64, txns ...applied.Txn) *applied.Progress {
	return &applied.Progress{From: from, To: to, Txns: txns}
}

func tx(commit uint64, changes int) applied.Txn {
	return applied.Txn{CommitLSN: commit, Changes: changes}
}

func ch(commit uint64, index int) applied.Change {
	return applied.Change{CommitLSN: commit, Index: index}
}

func run(t *testing.T, pool *pgxpool.Pool, steps []step) {
	t.Helper()
	ctx := t.Context()
	for i, s := range steps {
		if s.report != nil {
			if err := applied.RecordProgress(ctx, pool, *s.report); err != nil {
				t.Fatalf("step %d: %v", i, err)
			}
		}
		if err := applied.RecordApplied(ctx, pool, s.applied); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		got, err := applied.Advance(ctx, pool)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if loaded, err := applied.Load(ctx, pool); err != nil || loaded != got {
			t.Fatalf("step %d: Load = %d, %v; Advance said %d", i, loaded, err, got)
		}
		if got != s.want {
			t.Fatalf("step %d: watermark %d, want %d", i, got, s.want)
		}
	}
}

func TestWatermark(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		steps []step
	}{
		{"nothing before the chain starts", []step{
			{applied: []applied.Change{ch(150, 0)}, want: 0},
			{report: rep(100, 200, tx(150, 1)), want: 0}, // no root: neither snapshot nor resume
		}},
		{"empty snapshot starts the chain at its point", []step{
			{report: &applied.Progress{To: 100, Snapshot: true}, want: 100},
			{report: rep(100, 180), want: 180}, // WAL without catalog changes
		}},
		{"later change applied first does not move the watermark", []step{
			{report: &applied.Progress{To: 100, Snapshot: true}, want: 100},
			{report: rep(100, 200, tx(150, 2), tx(200, 1)), want: 100},
			{report: rep(200, 300, tx(250, 1)), want: 100},
			{applied: []applied.Change{ch(250, 0)}, want: 100},
			{applied: []applied.Change{ch(200, 0)}, want: 100},
			{applied: []applied.Change{ch(150, 1)}, want: 100},
			{applied: []applied.Change{ch(150, 1)}, want: 100}, // a duplicate counts once
			{applied: []applied.Change{ch(150, 0)}, want: 300},
		}},
		{"changes applied before their report", []step{
			{report: &applied.Progress{To: 100, Snapshot: true}, want: 100},
			{applied: []applied.Change{ch(120, 0), ch(120, 1), ch(130, 0)}, want: 100},
			{report: rep(100, 140, tx(120, 2), tx(130, 1)), want: 140},
		}},
		{"a report arriving out of order waits for the one before it", []step{
			{report: &applied.Progress{To: 100, Snapshot: true}, want: 100},
			{report: rep(200, 300, tx(250, 1)), applied: []applied.Change{ch(250, 0)}, want: 100},
			{report: rep(100, 200, tx(150, 1)), want: 100},
			{applied: []applied.Change{ch(150, 0)}, want: 300},
		}},
		{"a restarted CDC reports overlapping spans", []step{
			{report: &applied.Progress{To: 100, Snapshot: true}, want: 100},
			{report: rep(100, 300, tx(150, 1), tx(250, 1)), want: 100},
			// CDC confirmed 200 before it died; it resumes there.
			{report: &applied.Progress{From: 200, To: 400, Resume: true, Txns: []applied.Txn{tx(250, 1), tx(350, 1)}}, want: 100},
			{applied: []applied.Change{ch(150, 0), ch(250, 0)}, want: 300},
			{applied: []applied.Change{ch(350, 0)}, want: 400},
		}},
		{"a database indexed before watermarks starts at the first resumed session", []step{
			{report: &applied.Progress{From: 500, To: 600, Resume: true, Txns: []applied.Txn{tx(550, 1)}}, want: 500},
			{applied: []applied.Change{ch(550, 0)}, want: 600},
		}},
		{"a changes recorded below the watermark are ignored", []step{
			{report: &applied.Progress{To: 100, Snapshot: true}, want: 100},
			{applied: []applied.Change{ch(90, 0)}, want: 100},
			{report: rep(100, 110), want: 110},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			run(t, open(t), c.steps)
		})
	}
}

func TestSnapshotSpanCompletesWithTheRebuild(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pool := open(t)
	run(t, pool, []step{
		{report: &applied.Progress{To: 100, Snapshot: true, Rows: 5000}, want: 0},
		{report: rep(100, 200), want: 0},
	})
	// The indexer sees the snapshot's rows and rebuilds.
	if isNew, err := applied.NewSnapshot(ctx, pool, 100); err != nil || !isNew {
		t.Fatalf("NewSnapshot = %v, %v", isNew, err)
	}
	if w, err := applied.Advance(ctx, pool); err != nil || w != 0 {
		t.Fatalf("during the rebuild: %d, %v", w, err)
	}
	if err := applied.Rebuilt(ctx, pool, 100); err != nil {
		t.Fatal(err)
	}
	if w, err := applied.Advance(ctx, pool); err != nil || w != 200 {
		t.Fatalf("after the rebuild: %d, %v; want 200", w, err)
	}
	// A truncate asks for another rebuild; the watermark stays where it is
	// (the truncating transaction is a change like any other).
	if err := applied.RequestRebuild(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if needed, snap, err := applied.RebuildNeeded(ctx, pool); err != nil || !needed || snap != 100 {
		t.Fatalf("RebuildNeeded = %v, %d, %v", needed, snap, err)
	}
}

// TestWatermarkUnderConcurrency records reports and applied changes in a
// random order from several goroutines, with duplicates, the way parallel
// deliveries and redeliveries do, and checks after every Advance that each
// transaction at or below the watermark had all its changes recorded.
func TestWatermarkUnderConcurrency(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pool := open(t)
	rng := rand.New(rand.NewPCG(7, 11))

	type txn struct {
		commit  uint64
		changes int
	}
	var (
		reports []applied.Progress
		txns    []txn
		pos     uint64 = 1000
	)
	reports = append(reports, applied.Progress{To: pos, Snapshot: true})
	for range 60 {
		r := applied.Progress{From: pos}
		for range rng.IntN(4) {
			pos += 1 + uint64(rng.IntN(50))
			n := 1 + rng.IntN(5)
			r.Txns = append(r.Txns, tx(pos, n))
			txns = append(txns, txn{pos, n})
		}
		pos += 1 + uint64(rng.IntN(20))
		r.To = pos
		reports = append(reports, r)
	}
	type op struct {
		report *applied.Progress
		change *applied.Change
	}
	var ops []op
	for i := range reports {
		ops = append(ops, op{report: &reports[i]})
	}
	for _, x := range txns {
		for i := range x.changes {
			c := ch(x.commit, i)
			ops = append(ops, op{change: &c})
			if rng.IntN(4) == 0 {
				ops = append(ops, op{change: &c}) // redelivered
			}
		}
	}
	rng.Shuffle(len(ops), func(i, j int) { ops[i], ops[j] = ops[j], ops[i] })

	var (
		mu       sync.Mutex
		recorded = map[applied.Change]bool{}
		bad      error
	)
	check := func(w uint64) {
		mu.Lock()
		defer mu.Unlock()
		for _, x := range txns {
			if x.commit > w {
				break
			}
			for i := range x.changes {
				if !recorded[ch(x.commit, i)] && bad == nil {
					bad = errors.New("watermark passed a transaction with an unrecorded change")
					t.Errorf("watermark %d passed transaction %d, change %d not recorded", w, x.commit, i)
				}
			}
		}
	}
	work := make(chan op)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for o := range work {
				var err error
				if o.report != nil {
					err = applied.RecordProgress(ctx, pool, *o.report)
				} else {
					// Marked first: once RecordApplied has committed, another
					// goroutine's Advance may rightly pass the change before
					// this one could mark it.
					mu.Lock()
					recorded[*o.change] = true
					mu.Unlock()
					err = applied.RecordApplied(ctx, pool, []applied.Change{*o.change})
				}
				if err != nil {
					t.Error(err)
					continue
				}
				w, err := applied.Advance(ctx, pool)
				if err != nil {
					t.Error(err)
					continue
				}
				check(w)
			}
		})
	}
	for _, o := range ops {
		work <- o
	}
	close(work)
	wg.Wait()
	if w, err := applied.Load(ctx, pool); err != nil || w != pos {
		t.Fatalf("final watermark %d, %v; want %d", w, err, pos)
	}
	var left int
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM search_txn) + (SELECT count(*) FROM search_progress)`).Scan(&left); err != nil || left != 0 {
		t.Fatalf("%d rows of bookkeeping left behind (%v)", left, err)
	}
}

func TestParseProgress(t *testing.T) {
	t.Parallel()
	good := eventtype.ProgressData{From: "100", To: "200", Txns: []eventtype.ProgressTxn{{CommitLSN: "150", Changes: 2}}}
	if p, err := applied.ParseProgress(good); err != nil || p.From != 100 || p.To != 200 || len(p.Txns) != 1 || p.Txns[0] != tx(150, 2) {
		t.Fatalf("ParseProgress(good) = %+v, %v", p, err)
	}
	bad := []eventtype.ProgressData{
		{From: "x", To: "200"},
		{From: "100", To: ""},
		{From: "300", To: "200"},
		{From: "100", To: "200", Snapshot: true},
		{From: "0", To: "200", Snapshot: true, Rows: -1},
		{From: "100", To: "200", Txns: []eventtype.ProgressTxn{{CommitLSN: "100", Changes: 1}}},
		{From: "100", To: "200", Txns: []eventtype.ProgressTxn{{CommitLSN: "201", Changes: 1}}},
		{From: "100", To: "200", Txns: []eventtype.ProgressTxn{{CommitLSN: "150", Changes: 0}}},
		{From: "100", To: "200", Txns: []eventtype.ProgressTxn{{CommitLSN: "-5", Changes: 1}}},
	}
	for _, d := range bad {
		if _, err := applied.ParseProgress(d); !errors.Is(err, applied.ErrBadProgress) {
			t.Errorf("ParseProgress(%+v) = %v, want ErrBadProgress", d, err)
		}
	}
}

func TestWaitTimesOutThenSucceeds(t *testing.T) {
	t.Parallel()
	pool := open(t)
	ctx, cancel := context.WithTimeout(t.Context(), 150*time.Millisecond)
	defer cancel()
	if _, err := applied.Wait(ctx, pool, 500, 10*time.Millisecond); !errors.Is(err, applied.ErrTimeout) {
		t.Fatalf("Wait before the watermark = %v, want ErrTimeout", err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := applied.Wait(t.Context(), pool, 500, 10*time.Millisecond)
		done <- err
	}()
	run(t, pool, []step{{report: &applied.Progress{To: 600, Snapshot: true}, want: 600}})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestAdvanceNeverPassesAReportRecordedMeanwhile: a report (a span with a
// transaction not yet applied) that commits while Advance is running must
// not let the watermark over that transaction. Advance reads the first
// incomplete transaction and the spans it may pass; when those two reads
// see different moments, a span recorded between them is passed with its
// transaction counted as complete. Many trials make the interleaving likely.
func TestAdvanceNeverPassesAReportRecordedMeanwhile(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pool := open(t)
	run(t, pool, []step{{report: &applied.Progress{From: 0, To: 100, Snapshot: true}, want: 100}})
	const trials = 400
	w := uint64(100)
	for i := range trials {
		from, to := w, w+10
		stop := make(chan struct{})
		var advanced sync.WaitGroup
		var failed atomic.Pointer[error]
		var advances atomic.Int64
		advanced.Go(func() {
			for {
				if _, err := applied.Advance(ctx, pool); err != nil {
					failed.Store(&err)
					return
				}
				advances.Add(1)
				select {
				case <-stop:
					return
				default:
				}
			}
		})
		// The report lands after 0–2 finished Advance calls (at a varying
		// point of the next one), and one more Advance runs after it.
		ahead := int64(rand.IntN(3))
		testenv.WaitFor(t, 5*time.Minute, "Advance calls", func() bool { return advances.Load() >= ahead || failed.Load() != nil })
		if err := applied.RecordProgress(ctx, pool, *rep(from, to, tx(from+5, 1))); err != nil {
			t.Fatal(err)
		}
		after := advances.Load() + 2 // the one running now may have started before the report
		testenv.WaitFor(t, 5*time.Minute, "an Advance after the report", func() bool { return advances.Load() >= after || failed.Load() != nil })
		close(stop)
		advanced.Wait()
		if err := failed.Load(); err != nil {
			t.Fatal(*err)
		}
		got, err := applied.Load(ctx, pool)
		if err != nil {
			t.Fatal(err)
		}
		if got != from {
			t.Fatalf("trial %d: watermark %d passed transaction %d, whose change was never applied (want %d)", i, got, from+5, from)
		}
		// Complete it: the next trial starts at its span's end.
		if err := applied.RecordApplied(ctx, pool, []applied.Change{ch(from+5, 0)}); err != nil {
			t.Fatal(err)
		}
		if w, err = applied.Advance(ctx, pool); err != nil || w != to {
			t.Fatalf("trial %d: after applying, watermark %d, %v; want %d", i, w, err, to)
		}
	}
}
