package recommendfn_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jonboulle/clockwork"
	"github.com/stretchr/testify/require"

	recommendfn "github.com/overture-music/overture/functions/recommend"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/listengen"
	"github.com/overture-music/overture/internal/postgres"
	"github.com/overture-music/overture/internal/postgres/postgrestest"
	"github.com/overture-music/overture/internal/recommend/artifact"
	"github.com/overture-music/overture/internal/recommend/job"
	"github.com/overture-music/overture/internal/recommend/result"
	"github.com/overture-music/overture/internal/stats"
)

// start starts a function on pool with a fake clock at now.
func start(t *testing.T, pool *pgxpool.Pool, now time.Time, cfg map[string]string) (*recommendfn.Function, *clockwork.FakeClock) {
	t.Helper()
	clock := clockwork.NewFakeClockAt(now)
	f := recommendfn.New()
	f.Pool, f.Log, f.Size, f.Clock = pool, slog.New(slog.DiscardHandler), 20, clock
	c := map[string]string{"DATABASE_URL": "unused"}
	for k, v := range cfg {
		c[k] = v
	}
	require.NoError(t, f.Start(context.Background(), c))
	t.Cleanup(func() { _ = f.Stop(context.Background()) })
	return f, clock
}

// enqueue queues user's refresh job as the feed service does.
func enqueue(t *testing.T, pool *pgxpool.Pool, user string, now time.Time) job.Job {
	t.Helper()
	var j job.Job
	require.NoError(t, postgres.InTx(context.Background(), pool, func(tx pgx.Tx) error {
		var err error
		j, _, err = job.Enqueue(context.Background(), tx, user, job.Requested, now)
		return err
	}))
	return j
}

func getJob(t *testing.T, pool *pgxpool.Pool, j job.Job) job.Job {
	t.Helper()
	got, err := job.Get(context.Background(), pool, j.UserID, j.ID)
	require.NoError(t, err)
	return got
}

func body(t *testing.T, r result.Result) result.Body {
	t.Helper()
	var b result.Body
	require.NoError(t, json.Unmarshal(r.Body, &b))
	return b
}

func ids(ts []result.Track) map[string]bool {
	out := map[string]bool{}
	for _, t := range ts {
		out[t.TrackID] = true
	}
	return out
}

// TestRefreshJob: after a recompute, one listener's refresh job makes their
// result from the stored models (no training: milliseconds), close to what
// the recompute made for them; its redelivery changes nothing; a job left
// running by a killed worker is run again; the similar items the recompute
// stored are of the same planted taste.
func TestRefreshJob(t *testing.T) {
	ctx := context.Background()
	pool := postgrestest.Pool(t)
	at := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	f, clock := start(t, pool, at.Add(time.Hour), nil)
	g := seed(t, f.Stats)
	require.Equal(t, at, g.Config().End)
	run, err := f.Recompute(ctx, at)
	require.NoError(t, err)
	require.Positive(t, run.Similar)

	cluster := map[string]int{}
	artistCluster := map[string]int{}
	for _, tr := range g.Tracks() {
		cluster[tr.ID] = tr.Cluster
		artistCluster[tr.ArtistName] = tr.Cluster
	}
	results := result.Store{Pool: pool}
	played := func(user string) map[string]bool {
		out := map[string]bool{}
		rows, err := pool.Query(ctx, `SELECT DISTINCT track_id FROM stats_listen WHERE user_id = $1 AND (scrobble OR skipped)`, user)
		require.NoError(t, err)
		var id string
		_, err = pgx.ForEachRow(rows, []any{&id}, func() error { out[id] = true; return nil })
		require.NoError(t, err)
		return out
	}

	t.Run("MakesTheListenersResultFromTheStoredModels", func(t *testing.T) {
		mixShare, becauseShare, n := 0.0, 0.0, 0
		for _, l := range g.Listeners()[:30] {
			batch, err := results.Get(ctx, l.ID)
			if err != nil {
				continue // nothing counted
			}
			j := enqueue(t, pool, l.ID, clock.Now())
			began := time.Now()
			_, err = f.Handle(ctx, job.Event(j))
			require.NoError(t, err)
			took := time.Since(began)
			done := getJob(t, pool, j)
			require.Equal(t, job.Done, done.State, done.Error)
			require.Equal(t, 1, done.Attempts)
			stored, err := results.Get(ctx, l.ID)
			require.NoError(t, err)
			require.Equal(t, stored.ETag, done.ResultETag)
			require.Equal(t, clock.Now().UTC().Truncate(time.Millisecond), stored.MadeAt.UTC(), "made when the job ran")
			b, old := body(t, stored), body(t, batch)
			require.Equal(t, run.Version+"+refresh", b.Version)
			require.Len(t, b.Sections, 2)
			require.Len(t, b.Sections[0].Tracks, 20, "the daily mix is full")
			p := played(l.ID)
			for _, sec := range b.Sections {
				for _, tr := range sec.Tracks {
					require.False(t, p[tr.TrackID], "%s recommends %s, which %s played", sec.ID, tr.TrackID, l.ID)
					if sec.ID == "because-you-listened" {
						require.True(t, p[tr.Because], "because of %s, which %s never played", tr.Because, l.ID)
					}
				}
			}
			share := func(i int) float64 {
				want, got := ids(old.Sections[i].Tracks), ids(b.Sections[i].Tracks)
				same := 0
				for id := range got {
					if want[id] {
						same++
					}
				}
				return float64(same) / float64(max(len(want), 1))
			}
			mixShare += share(0)
			becauseShare += share(1)
			n++
			if n == 1 {
				t.Logf("one refresh took %s", took)
			}
		}
		require.Greater(t, n, 20)
		t.Logf("the refresh's sections share %.2f (daily mix) and %.2f (because) of the recompute's, over %d listeners", mixShare/float64(n), becauseShare/float64(n), n)
		require.Greater(t, mixShare/float64(n), 0.7, "folded in, the daily mix is the recompute's")
		require.Greater(t, becauseShare/float64(n), 0.7, "from the stored neighbours, the same 'because' tracks")
	})

	t.Run("RedeliveryChangesNothing", func(t *testing.T) {
		user := g.Listeners()[40].ID
		j := enqueue(t, pool, user, clock.Now())
		_, err := f.Handle(ctx, job.Event(j))
		require.NoError(t, err)
		first := getJob(t, pool, j)
		stored, err := results.Get(ctx, user)
		require.NoError(t, err)
		clock.Advance(time.Minute) // a rerun would make a later result
		for range 3 {
			_, err = f.Handle(ctx, job.Event(j))
			require.NoError(t, err)
		}
		require.Equal(t, first, getJob(t, pool, j), "the job is as it was")
		again, err := results.Get(ctx, user)
		require.NoError(t, err)
		require.Equal(t, stored.ETag, again.ETag, "the result is as it was")
	})

	t.Run("AJobLeftRunningByAKilledWorkerRunsAgain", func(t *testing.T) {
		user := g.Listeners()[41].ID
		j := enqueue(t, pool, user, clock.Now())
		// A worker began it and was killed: the row says running, nothing
		// was stored, and the broker redelivers the event to another.
		_, ok, err := job.Begin(ctx, pool, j.ID, clock.Now())
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, job.Running, getJob(t, pool, j).State)
		other, _ := start(t, pool, clock.Now(), nil)
		_, err = other.Handle(ctx, job.Event(j))
		require.NoError(t, err)
		done := getJob(t, pool, j)
		require.Equal(t, job.Done, done.State)
		require.Equal(t, 2, done.Attempts)
		stored, err := results.Get(ctx, user)
		require.NoError(t, err)
		require.Equal(t, stored.ETag, done.ResultETag)
	})

	t.Run("AJobThatKeepsKillingItsWorkerFails", func(t *testing.T) {
		j := enqueue(t, pool, g.Listeners()[42].ID, clock.Now())
		for range job.MaxAttempts {
			_, _, err := job.Begin(ctx, pool, j.ID, clock.Now())
			require.NoError(t, err)
		}
		_, err := f.Handle(ctx, job.Event(j))
		require.NoError(t, err)
		failed := getJob(t, pool, j)
		require.Equal(t, job.Failed, failed.State)
		require.Contains(t, failed.Error, "gave up after 5 attempts")
	})

	t.Run("AListenerWithoutListensKeepsTheFallback", func(t *testing.T) {
		j := enqueue(t, pool, "nobody", clock.Now())
		_, err := f.Handle(ctx, job.Event(j))
		require.NoError(t, err)
		done := getJob(t, pool, j)
		require.Equal(t, job.Done, done.State)
		require.Empty(t, done.ResultETag)
		_, err = results.Get(ctx, "nobody")
		require.ErrorIs(t, err, result.ErrNone, "no empty result over the fallback")
	})

	t.Run("SimilarItemsShareTheirTaste", func(t *testing.T) {
		arts := &artifact.Store{Pool: pool}
		var keys []string
		for _, tr := range g.Tracks()[:100] {
			keys = append(keys, tr.ID)
		}
		sim, err := arts.Similar(ctx, artifact.Track, keys)
		require.NoError(t, err)
		same, total := 0, 0
		for id, s := range sim {
			require.NotContains(t, s.Neighbours, id, "a track is not its own neighbour")
			require.LessOrEqual(t, len(s.Neighbours), artifact.Keep)
			for _, n := range s.Neighbours[:min(10, len(s.Neighbours))] {
				total++
				if cluster[n] == cluster[id] {
					same++
				}
			}
		}
		require.Greater(t, total, 500)
		require.Greater(t, float64(same)/float64(total), 0.7, "similar tracks are of the same taste")

		var names []string
		for name := range artistCluster {
			names = append(names, name)
		}
		asim, err := arts.Similar(ctx, artifact.Artist, names)
		require.NoError(t, err)
		require.Greater(t, len(asim), len(names)/2)
		same, total = 0, 0
		byID := map[string]listengen.Track{}
		for _, tr := range g.Tracks() {
			byID[tr.ID] = tr
		}
		for name, s := range asim {
			require.NotContains(t, s.Neighbours, name, "an artist is not their own neighbour")
			require.Len(t, s.Tracks, len(s.Neighbours))
			for k, n := range s.Neighbours {
				require.Equal(t, n, byID[s.Tracks[k]].ArtistName, "each neighbour's track is theirs")
				if k < 5 {
					total++
					if artistCluster[n] == artistCluster[name] {
						same++
					}
				}
			}
		}
		require.Greater(t, float64(same)/float64(total), 0.7, "similar artists are of the same taste")
	})
}

// Before any recompute there are no models to fold a listener into: the
// job fails saying so (the listener keeps the fallback).
func TestRefreshBeforeAnyRecomputeFails(t *testing.T) {
	pool := postgrestest.Pool(t)
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	f, _ := start(t, pool, now, nil)
	_, err := f.Stats.Write(context.Background(), []stats.Row{{UserID: "ana", Listen: eventtype.Listen{ID: "l1", ListenedAt: now.Add(-time.Hour).Unix(),
		ArtistName: "a", TrackName: "t", TrackID: "00000000-0000-0000-0000-000000000001", Stream: true, Scrobble: true}}})
	require.NoError(t, err)
	j := enqueue(t, pool, "ana", now)
	_, err = f.Handle(context.Background(), job.Event(j))
	require.NoError(t, err)
	failed := getJob(t, pool, j)
	require.Equal(t, job.Failed, failed.State)
	require.Contains(t, failed.Error, "first batch recompute has not run")
}

func listensEvent(id, user string, at time.Time, scrobbles int) event.Event {
	e := event.New()
	e.SetID(id)
	e.SetType(eventtype.ListensSubmitted)
	e.SetSource("/overture/listens")
	e.SetSubject(user)
	d := eventtype.ListensData{BatchID: id, UserID: user, ListenType: "single"}
	for k := range scrobbles {
		d.Listens = append(d.Listens, eventtype.Listen{ID: fmt.Sprintf("%s-%d", id, k), ListenedAt: at.Add(time.Duration(k) * time.Second).Unix(),
			ArtistName: "a", TrackName: "t", TrackID: fmt.Sprintf("00000000-0000-0000-0000-%012d", k), Stream: true, Scrobble: true})
	}
	// a stream that is no scrobble, and a scrobble of no Overture track:
	// neither counts
	d.Listens = append(d.Listens, eventtype.Listen{ID: id + "-s", ListenedAt: at.Unix(), ArtistName: "a", TrackName: "t", TrackID: "00000000-0000-0000-0000-000000000001", Stream: true},
		eventtype.Listen{ID: id + "-x", ListenedAt: at.Unix(), ArtistName: "a", TrackName: "t", Stream: true, Scrobble: true})
	_ = e.SetData(event.ApplicationJSON, d)
	return e
}

// jobs counts user's refresh jobs and the RefreshRequested events in the
// outbox for them.
func jobs(t *testing.T, pool *pgxpool.Pool, user string) (rows, events int) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM recommend_job WHERE user_id = $1`, user).Scan(&rows))
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE event_type = $1 AND event->>'subject' = $2`, eventtype.RefreshRequested, user).Scan(&events))
	return rows, events
}

// TestListeningQueuesOneRefresh: the incremental refresh. A burst of
// listens (delivered in parallel) past the threshold queues exactly one
// refresh job, with its event in the outbox; fewer scrobbles queue none, a
// redelivered batch is counted once, scrobbles older than the stored result
// do not count, and the debounce holds a second refresh back until it has
// passed.
func TestListeningQueuesOneRefresh(t *testing.T) {
	ctx := context.Background()
	pool := postgrestest.Pool(t)
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	f, clock := start(t, pool, now, map[string]string{"RECOMMEND_REFRESH_SCROBBLES": "20", "RECOMMEND_REFRESH_DEBOUNCE": "10m"})
	deliver := func(e event.Event) {
		t.Helper()
		_, err := f.Handle(ctx, e)
		require.NoError(t, err)
	}

	t.Run("BelowTheThresholdNone", func(t *testing.T) {
		deliver(listensEvent("ana-1", "ana", now.Add(-time.Hour), 10))
		deliver(listensEvent("ana-2", "ana", now.Add(-time.Hour), 9))
		for range 3 {
			deliver(listensEvent("ana-2", "ana", now.Add(-time.Hour), 9)) // redelivered: counted once
		}
		rows, events := jobs(t, pool, "ana")
		require.Zero(t, rows)
		require.Zero(t, events)
		deliver(listensEvent("ana-3", "ana", now.Add(-time.Hour), 1))
		rows, events = jobs(t, pool, "ana")
		require.Equal(t, 1, rows, "the 20th scrobble queues the refresh")
		require.Equal(t, 1, events)
	})

	t.Run("ABurstQueuesExactlyOne", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make(chan error, 50)
		for k := range 50 {
			wg.Go(func() {
				_, err := f.Handle(ctx, listensEvent(fmt.Sprintf("bob-%d", k), "bob", now.Add(-time.Hour), 3))
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		rows, events := jobs(t, pool, "bob")
		require.Equal(t, 1, rows, "150 scrobbles in 50 parallel batches: one refresh")
		require.Equal(t, 1, events)
	})

	t.Run("DebouncedThenAgain", func(t *testing.T) {
		var j job.Job
		require.NoError(t, pool.QueryRow(ctx, `SELECT id::text, user_id FROM recommend_job WHERE user_id = 'bob'`).Scan(&j.ID, &j.UserID))
		_, _, err := job.Begin(ctx, pool, j.ID, clock.Now())
		require.NoError(t, err)
		require.NoError(t, job.Finish(ctx, pool, j.ID, "", clock.Now()))
		clock.Advance(9 * time.Minute)
		deliver(listensEvent("bob-late-1", "bob", now, 30))
		rows, _ := jobs(t, pool, "bob")
		require.Equal(t, 1, rows, "within the debounce: none")
		clock.Advance(time.Minute)
		deliver(listensEvent("bob-late-2", "bob", now, 1))
		rows, events := jobs(t, pool, "bob")
		require.Equal(t, 2, rows, "the debounce over: the next batch queues one")
		require.Equal(t, 2, events)
	})

	t.Run("ScrobblesBeforeTheResultDoNotCount", func(t *testing.T) {
		r, err := result.New(result.Body{UserID: "cy", Model: "m", Version: "v", MadeAt: now, Sections: []result.Section{}})
		require.NoError(t, err)
		_, err = result.Store{Pool: pool}.Put(ctx, []result.Result{r})
		require.NoError(t, err)
		deliver(listensEvent("cy-old", "cy", now.Add(-time.Hour), 25))
		rows, _ := jobs(t, pool, "cy")
		require.Zero(t, rows, "already in the stored result")
		deliver(listensEvent("cy-new", "cy", now.Add(time.Second), 20))
		rows, _ = jobs(t, pool, "cy")
		require.Equal(t, 1, rows)
	})
}

// Bad refresh settings fail the start, naming the key.
func TestBadRefreshSettingsFailStart(t *testing.T) {
	for key, v := range map[string]string{"RECOMMEND_REFRESH_SCROBBLES": "0", "RECOMMEND_REFRESH_DEBOUNCE": "soon"} {
		_, err := recommendfn.ReadConfig(map[string]string{"DATABASE_URL": "postgres://x", key: v})
		require.ErrorContains(t, err, key)
	}
}
