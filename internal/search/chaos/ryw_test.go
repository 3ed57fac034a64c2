package chaos_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/cdc"
	searchindexer "github.com/overture-music/overture/functions/search-indexer"
	"github.com/overture-music/overture/internal/catalog"
	"github.com/overture-music/overture/internal/postgres"
	"github.com/overture-music/overture/internal/query"
	"github.com/overture-music/overture/internal/search"
	"github.com/overture-music/overture/internal/search/bleve"
	"github.com/overture-music/overture/internal/testenv"
)

// scrambler is a broker that acknowledges a batch once every event in it was
// handled, but hands the events to the indexer concurrently after random
// delays and delivers some twice: later changes routinely overtake earlier
// ones, as they do on a broker that orders only per partition key.
type scrambler struct {
	handle func(context.Context, event.Event) error
	mu     sync.Mutex
	rng    *rand.Rand
	dups   atomic.Int64
}

func (s *scrambler) delay() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.Duration(s.rng.IntN(40)) * time.Millisecond
}

func (s *scrambler) twice() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rng.IntN(10) == 0
}

func (s *scrambler) Publish(ctx context.Context, events ...event.Event) error {
	var wg sync.WaitGroup
	var failed atomic.Bool
	for _, e := range events {
		if !strings.HasPrefix(e.Type(), "music.overture.cdc.") {
			continue
		}
		n := 1
		if s.twice() {
			n = 2
			s.dups.Add(1)
		}
		for range n {
			d := s.delay()
			wg.Go(func() {
				// The scrambler's injected delay (it reorders deliveries).
				select {
				case <-time.After(d):
				case <-ctx.Done():
				}
				if err := s.handle(ctx, e); err != nil {
					failed.Store(true)
				}
			})
		}
	}
	wg.Wait()
	if failed.Load() {
		return fmt.Errorf("an event was not handled")
	}
	return nil
}

// TestReadYourWritesIsExact: writers update tracks and immediately read them
// back through the query API with ?after=<token>, where the token is what the
// catalog API answers (the WAL position after the commit). Change events reach
// the indexer reordered and duplicated; every read must see its write.
func TestReadYourWritesIsExact(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dbURL := testenv.Postgres(t)
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if err := catalog.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	const tracks = 24
	ids := make([]string, tracks)
	for i := range ids {
		ids[i] = fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
		if _, err := pool.Exec(ctx, `INSERT INTO track (id, title, state, published_at) VALUES ($1, $2, 'published', now())`, ids[i], "start"); err != nil {
			t.Fatal(err)
		}
	}

	dir := t.TempDir()
	idx := searchindexer.New()
	if err := idx.Start(ctx, map[string]string{"DATABASE_URL": dbURL, "SEARCH_BACKEND": "bleve", "SEARCH_DIR": dir}); err != nil {
		t.Fatal(err)
	}
	defer idx.Stop(context.Background()) //nolint:errcheck
	sc := &scrambler{rng: rand.New(rand.NewPCG(3, 5)), handle: func(ctx context.Context, e event.Event) error {
		_, err := idx.Handle(ctx, e)
		return err
	}}
	// Slots are per server: one per database lets runs share the server.
	var slot string
	if err := pool.QueryRow(ctx, `SELECT 'ryw_' || current_database()`).Scan(&slot); err != nil {
		t.Fatal(err)
	}
	cctx, stopCDC := context.WithCancel(ctx)
	cdcDone := make(chan error, 1)
	go func() {
		cdcDone <- cdc.Run(cctx, cdc.Config{DatabaseURL: dbURL, Slot: slot, Publication: slot, Publisher: sc, FlushDelay: time.Millisecond})
	}()
	defer func() {
		stopCDC()
		if err := <-cdcDone; err != nil {
			t.Errorf("cdc: %v", err)
		}
	}()

	st, err := bleve.Open(dir) // the indexer's store, shared in process
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	qpool, err := postgres.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer qpool.Close()
	svc := query.NewWith(st, qpool, nil)
	srv := httptest.NewServer(svc)
	defer srv.Close()

	get := func(path string, into any) (int, error) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return resp.StatusCode, nil
		}
		return resp.StatusCode, json.NewDecoder(resp.Body).Decode(into)
	}
	token := func() string {
		var v string
		if err := pool.QueryRow(ctx, `SELECT (pg_current_wal_insert_lsn() - '0/0')::text`).Scan(&v); err != nil {
			t.Error(err)
		}
		return v
	}
	// Everything before the writers is searchable first.
	var seed search.Track
	if code, err := get("/v1/tracks/"+ids[0]+"?after="+token(), &seed); code != 200 || err != nil || seed.Title != "start" {
		t.Fatalf("seed: %d %v %+v", code, err, seed)
	}

	const writers, rounds = 4, 30
	var (
		reads, stale, notReady atomic.Int64
		firstStale             atomic.Value
	)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 99))
			for i := range rounds {
				id := ids[w+writers*rng.IntN(tracks/writers)]
				word := make([]byte, 9)
				for j := range word {
					word[j] = byte('a' + rng.IntN(26))
				}
				title := string(word)
				if _, err := pool.Exec(ctx, `UPDATE track SET title = $2 WHERE id = $1`, id, title); err != nil {
					t.Error(err)
					return
				}
				tok := token()
				var card search.Track
				code, err := get("/v1/tracks/"+id+"?after="+tok, &card)
				var res query.Page
				code2, err2 := get("/v1/search?q="+url.QueryEscape(title)+"&after="+tok, &res)
				reads.Add(2)
				if err != nil || err2 != nil {
					t.Error(err, err2)
					return
				}
				if code == http.StatusServiceUnavailable || code2 == http.StatusServiceUnavailable {
					notReady.Add(1)
					continue
				}
				found := false
				for _, h := range res.Hits {
					found = found || (h.ID == id && h.Title == title)
				}
				if code != 200 || code2 != 200 || card.Title != title || !found {
					stale.Add(1)
					firstStale.CompareAndSwap(nil, fmt.Sprintf("writer %d round %d: wrote %q to %s at %s; card %d %q, search %d found=%v", w, i, title, id, tok, code, card.Title, code2, found))
				}
			}
		})
	}
	wg.Wait()
	t.Logf("%d reads, %d duplicate deliveries, %d not ready within the wait, %d stale", reads.Load(), sc.dups.Load(), notReady.Load(), stale.Load())
	if stale.Load() > 0 {
		t.Fatalf("%d reads did not see the write their token names; first: %v", stale.Load(), firstStale.Load())
	}
	if notReady.Load() > 0 {
		t.Fatalf("%d reads timed out waiting for their token", notReady.Load())
	}
	if sc.dups.Load() == 0 {
		t.Fatal("no duplicate deliveries: the test did not exercise them")
	}
}
