package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/functions"
	"github.com/overture-music/overture/functions/deadletter"
	statswriter "github.com/overture-music/overture/functions/stats-writer"
	"github.com/overture-music/overture/internal/auth"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/listengen"
	"github.com/overture-music/overture/internal/listens"
	"github.com/overture-music/overture/internal/platform"
	"github.com/overture-music/overture/internal/server"
	"github.com/overture-music/overture/internal/stats"
	"github.com/overture-music/overture/internal/telemetry"
)

// e2eBatch is one POST /v1/listens body of one listener.
type e2eBatch struct {
	user     int
	body     []byte
	rows     []stats.Row // as the writer will store them (for the references)
	lastID   string
	lastAt   time.Time
	sent, ok time.Time // when the POST was sent and answered 200
	visible  time.Time // when its listens were first seen queryable
	status   int
}

type e2eResult struct {
	backend          string
	accepted, stored int64
	batches, refused int
	wall, sendWall   time.Duration // first send → all queryable; → last answer
	post, visible    []time.Duration
	ref, ref100      loadResult
}

func (e *e2eResult) rate() float64 { return float64(e.accepted) / e.wall.Seconds() }

var e2eResults []*e2eResult

// startPlatform starts the embedded platform as `make run` does (its own
// durable PostgreSQL, Redis, the broker with brokers/ and
// triggers/stats-writer.yaml, the gateway), hosting the auth and listens
// services and the stats-writer and dead-letter functions.
func startPlatform(ctx context.Context, dir string, env map[string]string) (*platform.Platform, error) {
	triggers := filepath.Join(dir, "triggers")
	if err := os.MkdirAll(triggers, 0o755); err != nil {
		return nil, err
	}
	yaml, err := os.ReadFile("triggers/stats-writer.yaml")
	if err != nil {
		return nil, fmt.Errorf("run from the repository root: %w", err)
	}
	if err := os.WriteFile(filepath.Join(triggers, "stats-writer.yaml"), yaml, 0o644); err != nil {
		return nil, err
	}
	var fns []functions.Entry
	for _, e := range functions.All() {
		if e.Name == statswriter.Name || e.Name == deadletter.Name {
			fns = append(fns, e)
		}
	}
	return platform.Start(ctx, platform.Options{
		Env:          env,
		DataDir:      filepath.Join(dir, "data"),
		ManifestDirs: []string{"brokers", triggers},
		Functions:    fns,
		Services:     []server.Service{auth.New(), listens.New()},
		Log:          telemetry.NewLogger(io.Discard, nil),
		ReadyTimeout: 3 * time.Minute,
	})
}

// probe is how the benchmark looks into the store the platform's writer
// fills: which batches are queryable, how many listens are stored, and a
// fresh store of the same kind on the same server for the references.
type probe struct {
	visible func(ctx context.Context, look []*e2eBatch) (map[string]bool, error)
	stored  func(ctx context.Context) (int64, error)
	fresh   func(ctx context.Context, name string) stats.Store
}

func endToEnd(ctx context.Context, dir, backend string) *e2eResult {
	res := &e2eResult{backend: backend}
	pdir := filepath.Join(dir, "platform-"+backend)
	must(os.MkdirAll(pdir, 0o755))
	env := map[string]string{stats.KeyBackend: backend}
	chdbDir := filepath.Join(dir, "chdb") // the process's one chDB session (ch.go opens the same)
	if backend == stats.ClickHouse {
		lib, err := filepath.Abs(stats.CHDBLibPath())
		must(err)
		env[stats.KeyCHDBLibPath], env[stats.KeyCHDBDataDir], env[stats.KeyClickHouseDatabase] = lib, chdbDir, "e2e"
	}
	p, err := startPlatform(ctx, pdir, env)
	must(err)
	defer func() { _ = p.Stop(context.Background()) }()
	dbURL := p.Config()[platform.KeyDatabaseURL]
	pool, err := pgxpool.New(ctx, dbURL)
	must(err)
	defer pool.Close()
	pr := pgProbe(pool, dbURL)
	if backend == stats.ClickHouse {
		pr = chProbe(ctx, chdbDir)
	}

	// Listeners: confirmed accounts, signed in through the gateway.
	k := *e2eConc
	users, tokens := make([]string, k), make([]string, k)
	client := &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 2 * k}}
	for i := range k {
		email, pw := fmt.Sprintf("listener%03d@bench.example", i), "bench listener password"
		id, _, err := auth.CreateAdmin(ctx, pool, email, pw, auth.DefaultArgon2)
		must(err)
		users[i] = id
		body, _ := json.Marshal(map[string]string{"email": email, "password": pw})
		res, err := client.Post(p.GatewayURL()+"/v1/auth/login", "application/json", bytes.NewReader(body))
		must(err)
		var lr struct {
			AccessToken string `json:"access_token"`
		}
		raw, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || json.Unmarshal(raw, &lr) != nil {
			must(fmt.Errorf("login %s: %d %s", email, res.StatusCode, raw))
		}
		tokens[i] = lr.AccessToken
	}

	batches := e2eBatches(ctx, users)
	step(fmt.Sprintf("end to end: %d batches of up to 100 listens from %d listeners", len(batches), k))

	// Each listener's client sends its batches one after the other.
	var mu sync.Mutex
	var pending []*e2eBatch
	perUser := make([][]*e2eBatch, k)
	for _, b := range batches {
		perUser[b.user] = append(perUser[b.user], b)
	}
	start := time.Now()
	stopAt := start.Add(*e2eTime)
	var wg sync.WaitGroup
	for u := range k {
		wg.Go(func() {
			for _, b := range perUser[u] {
				if time.Now().After(stopAt) {
					return
				}
				req, _ := http.NewRequest(http.MethodPost, p.GatewayURL()+"/v1/listens", bytes.NewReader(b.body))
				req.Header.Set("Authorization", "Bearer "+tokens[u])
				req.Header.Set("Content-Type", "application/json")
				b.sent = time.Now()
				r, err := client.Do(req)
				if err != nil {
					b.status = -1
					continue
				}
				_, _ = io.Copy(io.Discard, r.Body)
				r.Body.Close()
				b.status = r.StatusCode
				if r.StatusCode == http.StatusOK {
					b.ok = time.Now()
					mu.Lock()
					pending = append(pending, b)
					mu.Unlock()
				}
			}
		})
	}
	// The poller: every 100 ms, which answered batches are queryable (the
	// last listen of a batch is in the store; the writer stores a batch in
	// one transaction, so then all of it is).
	sendDone := make(chan struct{})
	go func() { wg.Wait(); close(sendDone) }()
	poll := func() {
		mu.Lock()
		look := slices.Clone(pending)
		mu.Unlock()
		if len(look) > 2000 {
			look = look[:2000]
		}
		if len(look) == 0 {
			return
		}
		seen, err := pr.visible(ctx, look)
		if err != nil {
			slog.Warn("poll", "error", err)
			return
		}
		now := time.Now()
		mu.Lock()
		pending = slices.DeleteFunc(pending, func(b *e2eBatch) bool {
			if seen[b.lastID] {
				b.visible = now
				return true
			}
			return false
		})
		mu.Unlock()
	}
	deadline := time.Now().Add(*e2eTime + 5*time.Minute)
	sending := true
	for time.Now().Before(deadline) {
		select {
		case <-sendDone:
			if sending {
				sending = false
				res.sendWall = time.Since(start)
			}
		case <-time.After(100 * time.Millisecond):
		}
		poll()
		mu.Lock()
		left := len(pending)
		mu.Unlock()
		if !sending && left == 0 {
			break
		}
	}
	var last time.Time
	var rows []stats.Row
	for _, b := range batches {
		if b.status == 0 {
			continue
		}
		res.batches++
		if b.status != http.StatusOK {
			res.refused++
			continue
		}
		res.accepted += int64(len(b.rows))
		rows = append(rows, b.rows...)
		res.post = append(res.post, b.ok.Sub(b.sent))
		if !b.visible.IsZero() {
			res.visible = append(res.visible, b.visible.Sub(b.sent))
			if b.visible.After(last) {
				last = b.visible
			}
		}
	}
	res.wall = last.Sub(start)
	slices.Sort(res.post)
	slices.Sort(res.visible)
	res.stored, err = pr.stored(ctx)
	must(err)
	step(fmt.Sprintf("end to end: %d listens accepted, %d stored, %.0f/s", res.accepted, res.stored, res.rate()))

	// The references on the same server: the bare store, fresh tables.
	ref := func(name string, size, conc int, batched bool) loadResult {
		st := pr.fresh(ctx, name)
		if !batched {
			return bulkLoad(ctx, st, int64(len(rows)), size, conc, func(i, j int64) []stats.Row { return rows[i:j] })
		}
		// The same batches as the writer received them, conc at a time.
		var ok []*e2eBatch
		for _, b := range batches {
			if b.status == http.StatusOK {
				ok = append(ok, b)
			}
		}
		return bulkLoad(ctx, st, int64(len(ok)), 1, conc, func(i, _ int64) []stats.Row { return ok[i].rows })
	}
	res.ref = ref("bench_ref_bulk", *batch, *writers, false)
	res.ref100 = ref("bench_ref_batches", 0, 16, true)
	res.ref100.n = res.accepted
	e2eResults = append(e2eResults, res)
	return res
}

func pgProbe(pool *pgxpool.Pool, dbURL string) probe {
	return probe{
		visible: func(ctx context.Context, look []*e2eBatch) (map[string]bool, error) {
			ids, ats := make([]string, len(look)), make([]time.Time, len(look))
			for i, b := range look {
				ids[i], ats[i] = b.lastID, b.lastAt
			}
			rows, err := pool.Query(ctx, `SELECT l.listen_id FROM unnest($1::text[], $2::timestamptz[]) AS u(id, at)
				JOIN stats_listen l ON l.listen_id = u.id AND l.listened_at = u.at`, ids, ats)
			if err != nil {
				return nil, err
			}
			defer rows.Close()
			seen := map[string]bool{}
			for rows.Next() {
				var id string
				if err := rows.Scan(&id); err != nil {
					return nil, err
				}
				seen[id] = true
			}
			return seen, rows.Err()
		},
		stored: func(ctx context.Context) (int64, error) {
			var n int64
			err := pool.QueryRow(ctx, `SELECT count(*) FROM stats_listen`).Scan(&n)
			return n, err
		},
		fresh: func(ctx context.Context, name string) stats.Store {
			u, err := url.Parse(dbURL)
			must(err)
			_, err = pool.Exec(ctx, `CREATE DATABASE `+name)
			must(err)
			u.Path = "/" + name
			rp, err := pgxpool.New(ctx, u.String())
			must(err)
			cleanups = append(cleanups, rp.Close)
			must(stats.Migrate(ctx, rp))
			return stats.NewPG(rp)
		},
	}
}

// chProbe reads the platform's ClickHouse store (database e2e) through the
// process's chDB session — the one the writer uses: its statements queue
// behind the writer's.
func chProbe(ctx context.Context, dir string) probe {
	lib, err := filepath.Abs(stats.CHDBLibPath())
	must(err)
	x, err := stats.Embedded(lib, dir)
	must(err)
	st, err := stats.NewCH(ctx, x, "e2e")
	must(err)
	return probe{
		visible: func(ctx context.Context, look []*e2eBatch) (map[string]bool, error) {
			ids := make([]string, len(look))
			for i, b := range look {
				ids[i] = "'" + b.lastID + "'" // hex: nothing to quote
			}
			out, err := st.Exec(ctx, "SELECT listen_id FROM e2e.stats_listen WHERE listen_id IN ("+strings.Join(ids, ",")+")")
			if err != nil {
				return nil, err
			}
			seen := map[string]bool{}
			for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				var r struct {
					ID string `json:"listen_id"`
				}
				if json.Unmarshal([]byte(line), &r) == nil {
					seen[r.ID] = true
				}
			}
			return seen, nil
		},
		stored: func(ctx context.Context) (int64, error) {
			out, err := st.Exec(ctx, "SELECT count() AS n FROM e2e.stats_listen FINAL")
			if err != nil {
				return 0, err
			}
			var r struct {
				N json.Number `json:"n"`
			}
			if err := json.Unmarshal(out, &r); err != nil {
				return 0, err
			}
			return r.N.Int64()
		},
		fresh: func(ctx context.Context, name string) stats.Store {
			s, err := stats.NewCH(ctx, x, name)
			must(err)
			return s
		},
	}
}

// e2eBatches generates the end-to-end listens (a generator of its own, one
// listener per account, the last 180 days) and cuts each listener's into
// ListenBrainz import bodies of 100, in the order they would be sent.
func e2eBatches(ctx context.Context, users []string) []*e2eBatch {
	end := time.Now().UTC().Add(-time.Hour).Truncate(time.Hour)
	g, err := listengen.New(listengen.Config{Seed: 2, Listeners: len(users), Artists: 500, Tracks: 5000,
		Listens: int64(*e2eN), Start: end.AddDate(0, 0, -180), End: end})
	must(err)
	type payload struct {
		ListenedAt int64 `json:"listened_at"`
		Meta       struct {
			Artist  string         `json:"artist_name"`
			Track   string         `json:"track_name"`
			Release string         `json:"release_name,omitempty"`
			Info    map[string]any `json:"additional_info"`
		} `json:"track_metadata"`
	}
	bufs := make([][]listengen.Listen, len(users))
	var out []*e2eBatch
	flush := func(u int) {
		ls := bufs[u]
		if len(ls) == 0 {
			return
		}
		ps := make([]payload, len(ls))
		b := &e2eBatch{user: u}
		for i, l := range ls {
			t := g.Tracks()[l.Track]
			p := &ps[i]
			p.ListenedAt = l.At.Unix()
			p.Meta.Artist, p.Meta.Track, p.Meta.Release = t.ArtistName, t.Name, t.AlbumName
			reason := "completed"
			if l.Skipped {
				reason = "skipped"
			}
			p.Meta.Info = map[string]any{"overture_track_id": t.ID, "duration_ms": t.DurationMS, "played_ms": l.PlayedMS,
				"end_reason": reason, "submission_client": "overture-bench"}
			el := eventtype.Listen{ListenedAt: l.At.Unix(), ArtistName: t.ArtistName, TrackName: t.Name, ReleaseName: t.AlbumName,
				TrackID: t.ID, DurationMS: t.DurationMS, PlayedMS: l.PlayedMS, Skipped: l.Skipped, Client: "overture-bench"}
			el.Stream, el.Scrobble = listens.Counts(el.DurationMS, el.PlayedMS)
			el.ID = listens.ListenID(users[u], el)
			b.rows = append(b.rows, stats.Row{UserID: users[u], Listen: el})
			b.lastID, b.lastAt = el.ID, l.At
		}
		body, err := json.Marshal(map[string]any{"listen_type": "import", "payload": ps})
		must(err)
		b.body = body
		out = append(out, b)
		bufs[u] = bufs[u][:0]
	}
	must(g.Each(ctx, func(l listengen.Listen) error {
		bufs[l.User] = append(bufs[l.User], l)
		if len(bufs[l.User]) == 100 {
			flush(l.User)
		}
		return nil
	}))
	for u := range users {
		flush(u)
	}
	return out
}

var (
	writeHow = map[string]string{stats.Postgres: "one transaction per batch", stats.ClickHouse: "one existing-ids look-up and one INSERT per batch, one batch at a time in the process: chDB runs one statement at a time"}
	pollHow  = map[string]string{stats.ClickHouse: " (through the same chDB session, so its statements queue with the writer's)"}
)

func writeE2E(md *strings.Builder, e *e2eResult) {
	fmt.Fprintf(md, "## End to end on %s: `POST /v1/listens` to queryable\n\n", e.backend)
	fmt.Fprintf(md, "The embedded platform as `make run` starts it: its own **durable** PostgreSQL (fsync on, the platform's settings), Redis, the broker with `brokers/` and `triggers/stats-writer.yaml` (delivery parallelism 16), the gateway, the auth and listens services and the stats-writer function (`STATS_BACKEND=%s`), all in this process but PostgreSQL and Redis. %d listeners (accounts signed in through `POST /v1/auth/login`) each submit their listens (a generator of their own: seed 2, the last 180 days) as ListenBrainz `import` bodies of 100 through the gateway, one after the other, all listeners at once, for at most %s. The service validates, publishes one event per batch and answers after the broker's acknowledgement (the event is then in PostgreSQL); the writer stores each batch as it comes (%s). A poller checks every 100 ms which answered batches have their last listen in `stats_listen`%s.\n\n",
		e.backend, *e2eConc, *e2eTime, writeHow[e.backend], pollHow[e.backend])
	fmt.Fprintf(md, "| | listens | wall | listens/s | latency p50 / p99 |\n| --- | ---: | ---: | ---: | --- |\n")
	fmt.Fprintf(md, "| end to end (POST → queryable) | %s accepted, %s stored | %.1f s | **%s** | POST answered: %s / %s ms; queryable: %s / **%s** ms |\n",
		count(e.accepted), count(e.stored), e.wall.Seconds(), count(int64(e.rate())), ms(pct(e.post, 50)), ms(pct(e.post, 99)), ms(pct(e.visible, 50)), ms(pct(e.visible, 99)))
	fmt.Fprintf(md, "| reference: bare `Store.Write`, %s-row calls, %d writers | %s | %.1f s | **%s** | |\n", count(int64(*batch)), *writers, count(e.ref.added), e.ref.wall.Seconds(), count(int64(e.ref.rate())))
	fmt.Fprintf(md, "| reference: bare `Store.Write` of the same 100-listen batches, 16 at a time | %s | %.1f s | %s | |\n", count(e.ref100.added), e.ref100.wall.Seconds(), count(int64(e.ref100.rate())))
	fmt.Fprintf(md, "\nEnd to end reaches **%.2f×** the bare bulk insert's rate and %.2f× that of the same 100-listen batches written straight into the store. %d of %d batches refused.\n\n",
		e.rate()/e.ref.rate(), e.rate()/e.ref100.rate(), e.refused, e.batches)
}
