// Command search is the search benchmark driver (hack/bench/search.sh runs it):
//
//  1. search latency at a fixed 200 requests/s (open loop: latency counts from
//     the scheduled send time, so a stall is not hidden) over a synthetic
//     catalog of 100,000 tracks, through the query API, on Bleve and on
//     OpenSearch, each without and with the Redis hot cache — same queries
//     (a Zipf mix of prefixes, typos, transliterations and filters), same
//     machine, same run;
//  2. commit-to-searchable latency at 2,000 changes/s: UPDATEs committed in
//     PostgreSQL, decoded by CDC from the WAL, applied by the search-indexer,
//     timed from the writer's commit to the indexer's acknowledgement (the
//     document is searchable before that), after an unmeasured warm-up at the
//     same rate that the pipeline is given time to apply (a cold OpenSearch
//     JVM indexes slower than one in service).
//
// It prints a markdown section on stdout.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/cdc"
	searchindexer "github.com/overture-music/overture/functions/search-indexer"
	"github.com/overture-music/overture/internal/broker"
	"github.com/overture-music/overture/internal/catalog"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/function"
	"github.com/overture-music/overture/internal/identity"
	"github.com/overture-music/overture/internal/infra"
	"github.com/overture-music/overture/internal/manifest"
	"github.com/overture-music/overture/internal/postgres"
	"github.com/overture-music/overture/internal/query"
	"github.com/overture-music/overture/internal/search"
	"github.com/overture-music/overture/internal/search/applied"
	"github.com/overture-music/overture/internal/search/bleve"
	"github.com/overture-music/overture/internal/search/hotcache"
	"github.com/overture-music/overture/internal/search/opensearch"
)

var (
	tracks   = flag.Int("tracks", 100000, "catalog size")
	rate     = flag.Int("rate", 200, "search requests per second")
	duration = flag.Duration("duration", 15*time.Second, "measured search load per configuration")
	warmup   = flag.Duration("warmup", 10*time.Second, "unmeasured load before each measurement (fills the cache, warms the JIT)")
	changes  = flag.Int("changes", 2000, "changes per second for commit-to-searchable")
	probe    = flag.Bool("probe", false, "only time each query once on Bleve, serially, and print the slowest")
	cdur     = flag.Duration("change-duration", 10*time.Second, "measured change load per backend")
	cwarm    = flag.Duration("change-warmup", 10*time.Second, "unmeasured change load at the same rate before the measured one")
	only     = flag.String("only", "", `"commit" runs only the commit-to-searchable part`)
	direct   = flag.Bool("direct", false, "commit-to-searchable: hand CDC's events to the indexer synchronously instead of through the embedded broker")
)

func main() {
	flag.Parse()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	dir, err := os.MkdirTemp("", "overture-bench-search-")
	must(err)
	must(os.Chmod(dir, 0o755)) // PostgreSQL runs as its own user
	defer os.RemoveAll(dir)
	var group infra.Group
	defer group.Stop() //nolint:errcheck
	if *probe {
		probeQueries(ctx, dir)
		return
	}

	step("starting Redis, OpenSearch and PostgreSQL")
	rds, err := infra.StartRedis(ctx, infra.RedisOptions{Dir: filepath.Join(dir, "redis")})
	must(err)
	group.Add(rds.Process)
	osn, err := infra.StartOpenSearch(ctx, infra.OpenSearchOptions{Dir: filepath.Join(dir, "opensearch"), HeapMB: 1024})
	must(err)
	group.Add(osn.Process)
	pg, err := infra.StartPostgres(ctx, infra.PostgresOptions{Dir: filepath.Join(dir, "pg"), Fast: true})
	must(err)
	group.Add(pg.Process)

	docs := catalogDocs(*tracks)
	queries := queryMix(docs)

	bl, err := bleve.Open(filepath.Join(dir, "bleve"))
	must(err)
	defer bl.Close()
	os1, err := opensearch.Open(ctx, osn.URL(), "bench-tracks")
	must(err)
	stores := []struct {
		name  string
		store search.Store
		redis int
	}{{"Bleve", bl, 1}, {"OpenSearch", os1, 2}}

	type row struct {
		backend, cache string
		mode           string
		lat            []time.Duration
		errors, hits   int
	}
	var rows []row
	loadTimes := map[string]time.Duration{}
	for _, s := range stores {
		if *only == "commit" {
			break
		}
		step(fmt.Sprintf("indexing %d tracks into %s", len(docs), s.name))
		start := time.Now()
		for i := 0; i < len(docs); i += 2000 {
			ops := make([]search.Op, 0, 2000)
			for _, d := range docs[i:min(i+2000, len(docs))] {
				ops = append(ops, search.Upsert(d, 10))
			}
			must(s.store.Apply(ctx, ops))
		}
		loadTimes[s.name] = time.Since(start)
		cache, err := hotcache.Open(ctx, rds.URL(s.redis))
		must(err)
		// The cached run goes first: an overloaded uncached run leaves a
		// backlog in the engine that would spill into the next run.
		for _, withCache := range []bool{true, false} {
			var c *hotcache.Cache
			label := "no cache"
			if withCache {
				c, label = cache, "hot cache"
			}
			srv := httptest.NewServer(query.NewWith(s.store, nil, c))
			if !withCache {
				step(fmt.Sprintf("%s, %s: %d requests one at a time", s.name, label, 400))
				lat, errs := serial(srv.URL, queries, 400)
				rows = append(rows, row{backend: s.name, cache: label, mode: "one at a time", lat: lat, errors: errs})
			}
			step(fmt.Sprintf("%s, %s: warm-up %s, then %s at %d req/s", s.name, label, *warmup, *duration, *rate))
			load(srv.URL, queries, *rate, *warmup, 7)
			lat, errs, hits := load(srv.URL, queries, *rate, *duration, 8)
			srv.Close()
			rows = append(rows, row{backend: s.name, cache: label, mode: fmt.Sprintf("%d req/s", *rate), lat: lat, errors: errs, hits: hits})
			time.Sleep(5 * time.Second) // let the engine drain
		}
		cache.Close()
	}

	type crow struct {
		backend string
		lat     []time.Duration
		ryw     []time.Duration
		sent    int
		lost    int
		rate    float64
	}
	var crows []crow
	for i, b := range []string{"bleve", "opensearch"} {
		step("commit-to-searchable on " + b)
		lat, ryw, sent, achieved := commitToSearchable(ctx, pg, b, osn.URL(), filepath.Join(dir, "c-bleve"), i, log)
		crows = append(crows, crow{backend: b, lat: lat, ryw: ryw, sent: sent, lost: sent - len(lat), rate: achieved})
	}

	// Report.
	if *only != "commit" {
		fmt.Printf("## Search (query API, %d tracks)\n\n", *tracks)
		fmt.Printf("Open-loop load at %d requests/s for %s per configuration after a %s warm-up at the same rate, "+
			"%d distinct queries drawn with a Zipf law (s=1.1: a few popular queries, a long tail) — "+
			"as-you-type prefixes, typos, Latin↔Cyrillic transliterations, genre/year filters. "+
			"Latency is measured from the scheduled send time by a Go client on the same machine, through `GET /v1/search` of the query service.\n\n",
			*rate, *duration, *warmup, len(queries))
		fmt.Println("| backend | cache | load | requests | errors | cache hits | p50 | p90 | p99 | max |")
		fmt.Println("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
		p99 := map[string]time.Duration{}
		for _, r := range rows {
			fmt.Printf("| %s | %s | %s | %d | %d | %s | %s | %s | %s | %s |\n", r.backend, r.cache, r.mode, len(r.lat)+r.errors, r.errors,
				pct(r.hits, len(r.lat)), ms(q(r.lat, 0.50)), ms(q(r.lat, 0.90)), ms(q(r.lat, 0.99)), ms(q(r.lat, 1)))
			if r.mode != "one at a time" {
				p99[r.backend+"/"+r.cache] = q(r.lat, 0.99)
			}
		}
		fmt.Println()
		for _, s := range stores {
			nc, hc := p99[s.name+"/no cache"], p99[s.name+"/hot cache"]
			fmt.Printf("- %s: p99 with the hot cache / without (both at the same rate) = %.3f; goal p99 < 20 ms with the cache: **%s** (%s).\n",
				s.name, float64(hc)/float64(nc), map[bool]string{true: "met", false: "missed"}[hc < 20*time.Millisecond], ms(hc))
		}
		fmt.Printf("- Bulk indexing of the %d documents (batches of 2000): Bleve %s, OpenSearch %s.\n\n",
			*tracks, loadTimes["Bleve"].Round(time.Millisecond), loadTimes["OpenSearch"].Round(time.Millisecond))

	}
	fmt.Printf("## Commit-to-searchable (CDC → search-indexer)\n\n")
	fmt.Printf("%d single-row `UPDATE track` transactions per second for %s after an unmeasured warm-up of %s at the same rate (and a wait until the pipeline has applied it), committed by 8 writers into PostgreSQL (fsync off), "+
		"decoded from the WAL by `cdc`, published into the embedded broker (PostgreSQL-backed, obeying triggers/search-indexer.yaml, as in `make run`) "+
		"and delivered to the search-indexer (Bleve or OpenSearch); `-direct` hands the events to the indexer synchronously instead. "+
		"Latency runs from the writer's commit returning to the indexer acknowledging the change (written and searchable). "+
		"Read-your-writes: every 25th writer reads its token (`pg_current_wal_insert_lsn()`) after the commit and waits with `applied.Wait` "+
		"(what `?after=` does) until the exact watermark reaches it; that wait is timed from the commit too.\n\n", *changes, *cdur, *cwarm)
	fmt.Println("| backend | changes sent | achieved changes/s | not seen | p50 | p90 | p99 | max | read-your-writes waits | RYW p50 | RYW p99 |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range crows {
		fmt.Printf("| %s | %d | %.0f | %d | %s | %s | %s | %s | %d | %s | %s |\n", r.backend, r.sent, r.rate, r.lost, ms(q(r.lat, 0.5)), ms(q(r.lat, 0.9)), ms(q(r.lat, 0.99)), ms(q(r.lat, 1)),
			len(r.ryw), ms(q(r.ryw, 0.5)), ms(q(r.ryw, 0.99)))
	}
	fmt.Println()
	for _, r := range crows {
		fmt.Printf("- %s: goal p99 < 1 s: **%s**.\n", r.backend, map[bool]string{true: "met", false: "missed"}[q(r.lat, 0.99) < time.Second && r.lost == 0])
	}
}

// diagnose prints the watermark's bookkeeping when a wait failed.
func diagnose(pool *pgxpool.Pool) {
	ctx := context.Background()
	for _, q := range []string{
		`SELECT 'applied', lsn, chained, snapshot_lsn, rebuild_needed FROM search_applied`,
		`SELECT 'span', from_lsn, to_lsn, snapshot, rows FROM search_progress ORDER BY from_lsn LIMIT 5`,
		`SELECT 'incomplete txn', commit_lsn, total, cardinality(seen) FROM search_txn WHERE total IS NULL OR cardinality(seen) < total ORDER BY commit_lsn LIMIT 10`,
		`SELECT 'retrying', trigger, attempt, left(coalesce(last_error, ''), 300), convert_from(event, 'UTF8')::json->>'id' FROM broker_delivery WHERE attempt > 0 LIMIT 10`,
		`SELECT 'slot', slot_name, confirmed_flush_lsn::text FROM pg_replication_slots`,
		`SELECT 'deliveries', trigger, count(*) FROM broker_delivery GROUP BY trigger`,
	} {
		rows, err := pool.Query(ctx, q)
		if err != nil {
			fmt.Fprintln(os.Stderr, "diagnose:", err)
			continue
		}
		for rows.Next() {
			v, _ := rows.Values()
			fmt.Fprintln(os.Stderr, "diagnose:", v)
		}
		rows.Close()
	}
}

// handlerFunc adapts a function to function.Handler.
type handlerFunc func(context.Context, event.Event) (*event.Event, error)

func (f handlerFunc) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	return f(ctx, e)
}

func step(s string) { fmt.Fprintln(os.Stderr, "==", time.Now().UTC().Format("15:04:05"), s) }

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func q(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/1e6) }

func pct(a, b int) string {
	if b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f%%", 100*float64(a)/float64(b))
}

// serial sends n queries one after another (the engine's unloaded cost).
func serial(base string, queries []string, n int) ([]time.Duration, int) {
	client := &http.Client{Timeout: 10 * time.Second}
	r := rand.New(rand.NewPCG(5, 6))
	zipf := rand.NewZipf(r, 1.1, 1, uint64(len(queries)-1))
	var lat []time.Duration
	errs := 0
	for range n {
		start := time.Now()
		resp, err := client.Get(base + "/v1/search?" + queries[zipf.Uint64()])
		if err != nil || resp.StatusCode != 200 {
			errs++
			if err == nil {
				resp.Body.Close()
			}
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		lat = append(lat, time.Since(start))
	}
	return lat, errs
}

// load sends GET /v1/search at rate for d and returns the latencies.
func load(base string, queries []string, rate int, d time.Duration, seed uint64) ([]time.Duration, int, int) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}, Timeout: 10 * time.Second}
	r := rand.New(rand.NewPCG(seed, 99))
	zipf := rand.NewZipf(r, 1.1, 1, uint64(len(queries)-1))
	interval := time.Second / time.Duration(rate)
	n := int(d / interval)
	var mu sync.Mutex
	var lat []time.Duration
	var errs, hits int
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		at := start.Add(time.Duration(i) * interval)
		time.Sleep(time.Until(at))
		u := base + "/v1/search?" + queries[zipf.Uint64()]
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := client.Get(u)
			ok := err == nil && resp.StatusCode == 200
			hit := false
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				hit = resp.Header.Get("X-Cache") == "hit"
			}
			el := time.Since(at)
			mu.Lock()
			defer mu.Unlock()
			if !ok {
				errs++
				return
			}
			lat = append(lat, el)
			if hit {
				hits++
			}
		}()
	}
	wg.Wait()
	return lat, errs, hits
}

var (
	wordsEn = strings.Fields("love night summer heart fire dream rain road home city light shadow river ocean star moon sun wind storm silence winter spring blue black white gold silver morning evening dance song heaven angel ghost echo mirror wild young forever lonely crazy sweet broken electric")
	wordsRu = strings.Fields("любовь ночь лето сердце огонь мечта дождь дорога дом город свет тень река море звезда луна солнце ветер гроза тишина зима весна небо песня танец ангел зеркало осень кровь группа время память")
	nameEn  = strings.Fields("Arctic Velvet Silver Neon Crimson Golden Electric Midnight Paper Royal Wild Lunar Iron Glass Young Northern Sonic Holy Cold Static")
	nameEn2 = strings.Fields("Monkeys Underground Lights Tigers Horses Kids Machines Wolves Saints Rivers Ghosts Pilots Birds Brothers Sisters Engines Dreams Cowboys Waves Hearts")
	nameRu  = strings.Fields("Кино Аквариум Земфира Сплин Мумий Ночные Звери Пикник Алиса Браво Машина Чайф Агата Танцы Мельница Ленинград Калинов Наутилус Кукрыниксы Король")
	nameRu2 = strings.Fields("Тролль Снайперы Мост Времени Кристи Бригада Крематорий Лес Город Ветер Шут Пилот Зоопарк Ария Фантом Весна Полёт Сад Огонь Путь")
	genres  = strings.Fields("rock pop indie jazz metal punk folk electronic hiphop classical blues soul reggae country ambient techno house trance rnb disco")
)

func catalogDocs(n int) []search.Track {
	r := rand.New(rand.NewPCG(1, 2))
	artists := make([]search.Artist, 5000)
	for i := range artists {
		var name string
		if i%2 == 0 {
			name = nameEn[r.IntN(len(nameEn))] + " " + nameEn2[r.IntN(len(nameEn2))]
		} else {
			name = nameRu[r.IntN(len(nameRu))] + " " + nameRu2[r.IntN(len(nameRu2))]
		}
		artists[i] = search.Artist{ID: fmt.Sprintf("00000000-0000-4000-a000-%012d", i), Name: name}
	}
	albums := make([]search.Album, 10000)
	for i := range albums {
		albums[i] = search.Album{ID: fmt.Sprintf("00000000-0000-4000-b000-%012d", i), Title: title(r), Year: 1960 + r.IntN(66)}
	}
	docs := make([]search.Track, n)
	for i := range docs {
		al := albums[r.IntN(len(albums))]
		g := genres[r.IntN(len(genres))]
		docs[i] = search.Track{
			ID: fmt.Sprintf("00000000-0000-4000-c000-%012d", i), Title: title(r), Album: &al,
			Artists: []search.Artist{artists[r.IntN(len(artists))]}, Genre: &search.Genre{ID: g, Name: g},
			DurationMS: 120000 + r.IntN(240000), Popularity: int64(1e6 / (1 + r.IntN(100000))), Renditions: []string{"hls-aac-128", "mp3-320"},
		}
	}
	return docs
}

func title(r *rand.Rand) string {
	words := wordsEn
	if r.IntN(2) == 0 {
		words = wordsRu
	}
	n := 1 + r.IntN(3)
	parts := make([]string, n)
	for i := range parts {
		parts[i] = words[r.IntN(len(words))]
	}
	s := []rune(strings.Join(parts, " "))
	s[0] = unicode.ToUpper(s[0])
	return string(s)
}

// queryMix is the distinct query strings the load draws from.
func queryMix(docs []search.Track) []string {
	r := rand.New(rand.NewPCG(3, 4))
	var out []string
	add := func(v url.Values) { out = append(out, v.Encode()) }
	for range 400 {
		d := docs[r.IntN(len(docs))]
		name := d.Artists[0].Name
		word := strings.Fields(d.Title)[0]
		switch r.IntN(7) {
		case 0: // typing an artist name
			add(url.Values{"q": {string([]rune(name)[:min(len([]rune(name)), 3+r.IntN(5))])}})
		case 1: // a whole title
			add(url.Values{"q": {d.Title}})
		case 2: // transliterated
			add(url.Values{"q": {search.Translit(name)}})
		case 3: // a typo
			w := []rune(strings.ToLower(word))
			if len(w) > 3 {
				i := 1 + r.IntN(len(w)-2)
				w[i], w[i+1] = w[i+1], w[i]
			}
			add(url.Values{"q": {string(w)}})
		case 4: // with a genre filter
			add(url.Values{"q": {word}, "genre": {d.Genre.ID}})
		case 5: // with a year range
			add(url.Values{"q": {word}, "year_from": {strconv.Itoa(d.Album.Year - 5)}, "year_to": {strconv.Itoa(d.Album.Year + 5)}})
		default: // artist + title word, page 2
			add(url.Values{"q": {name + " " + word}, "page": {"2"}, "size": {"10"}})
		}
	}
	return out
}

// commitToSearchable measures the CDC → indexer pipeline on backend.
func commitToSearchable(ctx context.Context, pg *infra.Postgres, backend, osURL, bleveDir string, n int, log *slog.Logger) (lat, ryw []time.Duration, sent int, achieved float64) {
	db := fmt.Sprintf("c2s%d", n)
	admin, err := pgxpool.New(ctx, pg.URL("postgres"))
	must(err)
	_, err = admin.Exec(ctx, "CREATE DATABASE "+db)
	must(err)
	admin.Close()
	dbURL := pg.URL(db)
	pool, err := pgxpool.New(ctx, dbURL)
	must(err)
	defer pool.Close()
	must(catalog.Migrate(ctx, pool))
	const rows = 5000
	_, err = pool.Exec(ctx, fmt.Sprintf(`
INSERT INTO genre (id, name) VALUES ('rock', 'Rock');
INSERT INTO artist (id, name) VALUES ('11111111-1111-4111-8111-111111111111', 'Bench');
INSERT INTO album (id, title, artist_id, release_year) VALUES ('22222222-2222-4222-8222-222222222222', 'Bench', '11111111-1111-4111-8111-111111111111', 2000);
INSERT INTO track (id, title, album_id, genre_id, state, published_at)
SELECT gen_random_uuid(), 'bench 0', '22222222-2222-4222-8222-222222222222', 'rock', 'published', now() FROM generate_series(1, %d);`, rows))
	must(err)
	ids, err := func() ([]string, error) {
		rs, err := pool.Query(ctx, `SELECT id::text FROM track`)
		if err != nil {
			return nil, err
		}
		defer rs.Close()
		var out []string
		for rs.Next() {
			var s string
			_ = rs.Scan(&s)
			out = append(out, s)
		}
		return out, rs.Err()
	}()
	must(err)

	idx := searchindexer.New()
	cfg := map[string]string{"DATABASE_URL": dbURL, "SEARCH_BACKEND": backend, "SEARCH_DIR": bleveDir, "OPENSEARCH_URL": osURL, "OPENSEARCH_INDEX": "c2s-tracks"}
	must(idx.Start(ctx, cfg))
	defer idx.Stop(ctx) //nolint:errcheck

	// Either side may come first: the indexer can acknowledge a change before
	// the writer's Exec has returned.
	var mu sync.Mutex
	pending := map[string]time.Time{} // title → commit time, or seen time (negative key)
	seen := map[string]time.Time{}
	mark := func(title string, commit bool, at time.Time) {
		mu.Lock()
		defer mu.Unlock()
		if commit {
			if s, ok := seen[title]; ok {
				delete(seen, title)
				lat = append(lat, max(0, s.Sub(at)))
				return
			}
			pending[title] = at
			return
		}
		if c, ok := pending[title]; ok {
			delete(pending, title)
			lat = append(lat, at.Sub(c))
			return
		}
		seen[title] = at
	}
	pub := function.PublisherFunc(func(ctx context.Context, events ...event.Event) error {
		var wg sync.WaitGroup
		var failed atomic.Value
		for _, e := range events {
			if !strings.HasPrefix(e.Type(), "music.overture.cdc.") {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := idx.Handle(ctx, e); err != nil {
					failed.Store(err)
					return
				}
				now := time.Now()
				var d eventtype.ChangeData
				if json.Unmarshal(e.Data(), &d) == nil {
					if t, ok := d.After["title"].(string); ok && strings.HasPrefix(t, "c2s ") {
						mark(t, false, now)
					}
				}
			}()
		}
		wg.Wait()
		if err, _ := failed.Load().(error); err != nil {
			return err
		}
		return nil
	})
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var sink function.Publisher = pub
	if !*direct {
		// As in `make run`: CDC publishes into the embedded broker, which
		// stores the events and delivers them to the indexer as the
		// search-indexer triggers say.
		objs, err := manifest.LoadDir("brokers", "triggers/search-indexer.yaml")
		must(err)
		bpool, err := postgres.Open(ctx, dbURL)
		must(err)
		defer bpool.Close()
		indexer := handlerFunc(func(ctx context.Context, e event.Event) (*event.Event, error) {
			if _, err := idx.Handle(ctx, e); err != nil {
				return nil, err
			}
			var d eventtype.ChangeData
			if json.Unmarshal(e.Data(), &d) == nil {
				if t, ok := d.After["title"].(string); ok && strings.HasPrefix(t, "c2s ") {
					mark(t, false, time.Now())
				}
			}
			return nil, nil
		})
		deadLetter := handlerFunc(func(_ context.Context, e event.Event) (*event.Event, error) {
			fmt.Fprintln(os.Stderr, "bench: dead-lettered", e.Type(), e.ID())
			return nil, nil
		})
		b, err := broker.New(ctx, broker.Config{Pool: bpool.Pool, Objects: objs, Log: log,
			Resolve: func(name string) (function.Handler, bool) {
				switch name {
				case searchindexer.Name:
					return indexer, true
				case "dead-letter":
					return deadLetter, true
				}
				return nil, false
			}})
		must(err)
		go func() { _ = b.Run(cctx) }()
		// CDC publishes with its identity, which brokers/eventpolicies.yaml
		// allows the catalog's change events, as in make run.
		sink = b.As(identity.Subject(eventtype.Relay))
	}
	go func() {
		// Slots are per cluster: one per run.
		slot := fmt.Sprintf("bench%d", n)
		if err := cdc.Run(cctx, cdc.Config{DatabaseURL: dbURL, Slot: slot, Publication: slot, Publisher: sink, Log: log}); err != nil {
			must(err)
		}
	}()
	// Wait until the initial snapshot is applied (a marker after it).
	var before uint64
	must(pool.QueryRow(ctx, `SELECT (pg_current_wal_insert_lsn() - '0/0')::bigint`).Scan(&before))
	_, err = pool.Exec(ctx, `UPDATE genre SET name = 'Rock!' WHERE id = 'rock'`)
	must(err)
	wctx, wcancel := context.WithTimeout(ctx, 3*time.Minute)
	_, err = applied.Wait(wctx, pool, before+1, 50*time.Millisecond)
	wcancel()
	must(err)

	// The load: `changes` single-row UPDATEs per second, first for the
	// warm-up (unmeasured: it warms the JIT of OpenSearch and fills pools and
	// caches, as a server in service is), then — once the pipeline has
	// drained what the warm-up left, so the measured window does not inherit
	// a backlog — for the measured duration.
	const writers = 8
	per := time.Duration(writers) * time.Second / time.Duration(*changes)
	var seq, warmSeq atomic.Int64
	var wg sync.WaitGroup
	drive := func(d time.Duration, write func(w int)) {
		start := time.Now()
		var drivers sync.WaitGroup
		for w := range writers {
			drivers.Go(func() {
				for i := range int(d / per) {
					time.Sleep(time.Until(start.Add(time.Duration(i)*per + time.Duration(w)*per/writers)))
					write(w)
				}
			})
		}
		drivers.Wait()
	}
	drive(*cwarm, func(int) {
		s := warmSeq.Add(1)
		if _, err := pool.Exec(ctx, `UPDATE track SET title = $1 WHERE id = $2`, "c2w "+strconv.FormatInt(s, 10), ids[int(s)%len(ids)]); err != nil {
			must(err)
		}
	})
	var drained uint64
	must(pool.QueryRow(ctx, `SELECT (pg_current_wal_insert_lsn() - '0/0')::bigint`).Scan(&drained))
	dctx, dcancel := context.WithTimeout(ctx, 2*time.Minute)
	_, err = applied.Wait(dctx, pool, drained, 20*time.Millisecond)
	dcancel()
	must(err)
	measured := time.Now()
	drive(*cdur, func(int) {
		s := seq.Add(1)
		title := "c2s " + strconv.FormatInt(s, 10)
		if _, err := pool.Exec(ctx, `UPDATE track SET title = $1 WHERE id = $2`, title, ids[int(s)%len(ids)]); err != nil {
			must(err)
		}
		committed := time.Now()
		mark(title, true, committed)
		if s%25 == 0 {
			wg.Go(func() {
				var tok uint64
				must(pool.QueryRow(ctx, `SELECT (pg_current_wal_insert_lsn() - '0/0')::bigint`).Scan(&tok))
				wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				defer cancel()
				if _, err := applied.Wait(wctx, pool, tok, 5*time.Millisecond); err != nil {
					diagnose(pool)
					must(err)
				}
				mu.Lock()
				ryw = append(ryw, time.Since(committed))
				mu.Unlock()
			})
		}
	})
	wg.Wait()
	sent = int(seq.Load())
	achieved = float64(sent) / time.Since(measured).Seconds()
	// Let the tail drain (bounded).
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		got := len(lat)
		mu.Unlock()
		if got >= sent {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	mu.Lock()
	defer mu.Unlock()
	return slices.Clone(lat), slices.Clone(ryw), sent, achieved
}

func probeQueries(ctx context.Context, dir string) {
	docs := catalogDocs(*tracks)
	st, err := bleve.Open(filepath.Join(dir, "probe"))
	must(err)
	defer st.Close()
	for i := 0; i < len(docs); i += 2000 {
		ops := make([]search.Op, 0, 2000)
		for _, d := range docs[i:min(i+2000, len(docs))] {
			ops = append(ops, search.Upsert(d, 10))
		}
		must(st.Apply(ctx, ops))
	}
	type t struct {
		q string
		d time.Duration
		n int
	}
	var out []t
	if f := os.Getenv("PROBE_CPUPROFILE"); f != "" {
		pf, err := os.Create(f)
		must(err)
		must(pprof.StartCPUProfile(pf))
		defer pprof.StopCPUProfile()
	}
	for _, raw := range queryMix(docs) {
		v, _ := url.ParseQuery(raw)
		q := search.Query{Q: v.Get("q"), Genre: v.Get("genre")}
		q.YearFrom, _ = strconv.Atoi(v.Get("year_from"))
		q.YearTo, _ = strconv.Atoi(v.Get("year_to"))
		start := time.Now()
		res, err := st.Search(ctx, q)
		must(err)
		out = append(out, t{raw, time.Since(start), res.Total})
	}
	slices.SortFunc(out, func(a, b t) int { return int(b.d - a.d) })
	for _, o := range out[:15] {
		fmt.Printf("%8.2f ms  %6d hits  %s\n", float64(o.d)/1e6, o.n, o.q)
	}
}
