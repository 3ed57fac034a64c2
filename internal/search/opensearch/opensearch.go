// Package opensearch is the deployment search backend: an OpenSearch 2.x
// cluster reached with opensearch-go v4.
//
// Readers use the alias (e.g. "overture-tracks"); a reindex builds a new
// physical index, registers it under the "<alias>-rebuild" alias so every
// writer also writes there, then moves the alias atomically in one _aliases
// call. Writers resolve both aliases before each bulk request, so a writer in
// another process (the indexer function) follows a rebuild started by the
// CLI.
//
// Versioning is OpenSearch's own: every bulk action carries
// version_type=external with the change's commit LSN, so a stale write is
// refused with 409 and skipped. A delete is written as a tombstone document
// (deleted: true) rather than a real delete, because the versions of real
// deletes are forgotten after index.gc_deletes (60 s): a late, older upsert
// could then resurrect the track. Searches filter tombstones out; a reindex
// drops them, and so does PurgeTombstones below a bound the indexer knows to
// be safe (it needs the "version" field mapped, which Open adds to indices
// created before it was, with index.gc_deletes 0).
package opensearch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/opensearch-project/opensearch-go/v4"

	"github.com/overture-music/overture/internal/search"
)

// Store is an alias-backed search.Store on an OpenSearch cluster.
type Store struct {
	c     *opensearch.Client
	alias string
}

// Open connects to the cluster at baseURL and makes sure alias points at an
// index, creating the first one when the cluster has none.
func Open(ctx context.Context, baseURL, alias string) (*Store, error) {
	if alias == "" {
		alias = "overture-tracks"
	}
	c, err := opensearch.NewClient(opensearch.Config{
		Addresses:      []string{baseURL},
		RequestTimeout: 30 * time.Second,
		MaxRetries:     3,
	})
	if err != nil {
		return nil, fmt.Errorf("opensearch %s: %w", baseURL, err)
	}
	s := &Store{c: c, alias: alias}
	idx, err := s.indicesOf(ctx, alias)
	if err != nil {
		return nil, err
	}
	if len(idx) == 0 {
		name := s.newName()
		if err := s.createIndex(ctx, name, map[string]any{alias: map[string]any{}}); err != nil {
			// Another process may have created it first.
			if again, err2 := s.indicesOf(ctx, alias); err2 != nil || len(again) == 0 {
				return nil, err
			}
		}
	} else if err := s.upgrade(ctx, idx); err != nil {
		return nil, err
	}
	return s, nil
}

// upgrade brings indices created by older builds to what PurgeTombstones
// needs, with additive, idempotent changes: the "version" field in the
// mapping (so tombstones written from now on can be found by version;
// documents written before keep an unindexed version and are dropped by a
// reindex) and gc_deletes 0.
func (s *Store) upgrade(ctx context.Context, indices []string) error {
	if len(indices) == 0 {
		return nil
	}
	path := "/" + url.PathEscape(strings.Join(indices, ","))
	body := map[string]any{"properties": map[string]any{"version": versionMapping}}
	if _, err := s.do(ctx, "map version", http.MethodPut, path+"/_mapping", jsonBody(body), nil); err != nil {
		return err
	}
	_, err := s.do(ctx, "set gc_deletes", http.MethodPut, path+"/_settings", jsonBody(map[string]any{"index": map[string]any{"gc_deletes": settings["gc_deletes"]}}), nil)
	return err
}

// Alias returns the read alias.
func (s *Store) Alias() string { return s.alias }

func (s *Store) rebuildAlias() string { return s.alias + "-rebuild" }

// StaleRebuild is how old a registered rebuild must be for BeginRebuild to
// treat it as dead and drop it.
const StaleRebuild = time.Hour

// age returns how long ago the physical index name was made by newName.
func (s *Store) age(name string) (time.Duration, bool) {
	suffix, ok := strings.CutPrefix(name, s.alias+"-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(suffix, 36, 64)
	if err != nil {
		return 0, false
	}
	return time.Since(time.Unix(0, n)), true
}

func (s *Store) newName() string {
	return s.alias + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
}

// Close releases nothing: the client is stateless.
func (s *Store) Close() error { return nil }

// statusError is an unexpected HTTP answer from the cluster.
type statusError struct {
	Op     string
	Status int
	Body   string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("opensearch %s: status %d: %s", e.Op, e.Status, e.Body)
}

// do sends one request; out receives the JSON body of a 2xx answer. Statuses
// listed in ok are accepted too (their body is decoded as well).
func (s *Store) do(ctx context.Context, op, method, path string, body io.Reader, out any, ok ...int) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, path, body)
	if err != nil {
		return 0, fmt.Errorf("opensearch %s: %w", op, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	//lint:ignore SA1019 v4's buffered Perform is the contract this store is written for; Stream/Do replace it with the move to v5.
	resp, err := s.c.Perform(req)
	if err != nil {
		return 0, fmt.Errorf("opensearch %s: %w", op, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, fmt.Errorf("opensearch %s: read answer: %w", op, err)
	}
	if resp.StatusCode/100 != 2 && !slices.Contains(ok, resp.StatusCode) {
		if len(b) > 600 {
			b = b[:600]
		}
		return resp.StatusCode, &statusError{Op: op, Status: resp.StatusCode, Body: string(b)}
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("opensearch %s: decode answer: %w", op, err)
		}
	}
	return resp.StatusCode, nil
}

func jsonBody(v any) io.Reader {
	b, _ := json.Marshal(v)
	return bytes.NewReader(b)
}

// indicesOf returns the indices an alias points at (none when it does not exist).
func (s *Store) indicesOf(ctx context.Context, aliases ...string) ([]string, error) {
	var out map[string]any
	status, err := s.do(ctx, "resolve alias", http.MethodGet, "/_alias/"+url.PathEscape(strings.Join(aliases, ",")), nil, &out, http.StatusNotFound)
	if err != nil {
		return nil, err
	}
	if status == http.StatusNotFound {
		// 404 with some aliases found still lists those.
		delete(out, "error")
		delete(out, "status")
	}
	names := make([]string, 0, len(out))
	for name := range out {
		names = append(names, name)
	}
	slices.Sort(names)
	return names, nil
}

func (s *Store) createIndex(ctx context.Context, name string, aliases map[string]any) error {
	body := map[string]any{"settings": settings, "mappings": mappings}
	if len(aliases) > 0 {
		body["aliases"] = aliases
	}
	_, err := s.do(ctx, "create index "+name, http.MethodPut, "/"+url.PathEscape(name), jsonBody(body), nil)
	return err
}

var settings = map[string]any{
	"number_of_shards":   1,
	"number_of_replicas": 0,
	// Applied writes must be searchable fast: bulk requests wait_for a
	// refresh, and a short interval keeps that wait short.
	"refresh_interval": "100ms",
	// Keep refreshing even without searches, or wait_for would stall.
	"search.idle.after": "3650d",
	// Documents are only really deleted by PurgeTombstones, whose bound
	// already makes forgetting their versions safe; remembering them longer
	// would refuse older writes for a while after a purge, unlike Bleve.
	"gc_deletes": "0s",
	"analysis": map[string]any{
		"analyzer": map[string]any{
			// The transliteration key is computed in Go (search.Translit),
			// already lower-case Latin words.
			"tr": map[string]any{"type": "custom", "tokenizer": "whitespace", "filter": []string{"lowercase"}},
		},
	},
}

// versionMapping: commit LSNs are below 2^63 for any real database.
var versionMapping = map[string]any{"type": "long"}

var mappings = map[string]any{
	"dynamic": false,
	"properties": map[string]any{
		"id":         map[string]any{"type": "keyword"},
		"deleted":    map[string]any{"type": "boolean"},
		"version":    versionMapping,
		"text_en":    map[string]any{"type": "text", "analyzer": "english"},
		"text_ru":    map[string]any{"type": "text", "analyzer": "russian"},
		"tr":         map[string]any{"type": "text", "analyzer": "tr"},
		"popularity": map[string]any{"type": "long"},
		"genre":      map[string]any{"properties": map[string]any{"id": map[string]any{"type": "keyword"}}},
		"artists":    map[string]any{"properties": map[string]any{"id": map[string]any{"type": "keyword"}}},
		"album": map[string]any{"properties": map[string]any{
			"id":   map[string]any{"type": "keyword"},
			"year": map[string]any{"type": "integer"},
		}},
	},
}

// source is the stored document: the track plus derived search fields.
type source struct {
	search.Track
	Deleted bool   `json:"deleted,omitempty"`
	TextEn  string `json:"text_en,omitempty"`
	TextRu  string `json:"text_ru,omitempty"`
	Tr      string `json:"tr,omitempty"`
}

func sourceOf(op search.Op) source {
	if op.Doc == nil {
		return source{Track: search.Track{ID: op.ID, Version: op.Version, Artists: []search.Artist{}, Renditions: []string{}}, Deleted: true}
	}
	t := *op.Doc
	t.Version = op.Version
	text := t.SearchText()
	return source{Track: t, TextEn: text, TextRu: text, Tr: search.Translit(text)}
}

// Apply implements search.Index: writes to the alias's index and to a
// rebuild in progress, if any.
func (s *Store) Apply(ctx context.Context, ops []search.Op) error {
	for attempt := 0; ; attempt++ {
		targets, err := s.indicesOf(ctx, s.alias, s.rebuildAlias())
		if err != nil {
			return err
		}
		if len(targets) == 0 {
			return fmt.Errorf("opensearch: alias %s points at no index", s.alias)
		}
		err = s.bulk(ctx, targets, ops)
		// A rebuild swapped the alias and dropped the index between the
		// lookup and the bulk: resolve again (writes are idempotent).
		if errors.Is(err, errIndexGone) && attempt < 3 {
			continue
		}
		return err
	}
}

// errIndexGone marks a bulk that hit an index deleted meanwhile.
var errIndexGone = errors.New("index no longer exists")

// bulk writes ops to every index in targets with external versioning,
// skipping the version conflicts that mean "already as new".
func (s *Store) bulk(ctx context.Context, targets []string, ops []search.Op) error {
	if len(ops) == 0 {
		return nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, idx := range targets {
		for _, op := range ops {
			_ = enc.Encode(map[string]any{"index": map[string]any{
				"_index": idx, "_id": op.ID, "version": op.Version, "version_type": "external",
			}})
			_ = enc.Encode(sourceOf(op))
		}
	}
	var out struct {
		Errors bool `json:"errors"`
		Items  []map[string]struct {
			ID     string `json:"_id"`
			Index  string `json:"_index"`
			Status int    `json:"status"`
			Error  *struct {
				Type   string `json:"type"`
				Reason string `json:"reason"`
			} `json:"error"`
		} `json:"items"`
	}
	if _, err := s.do(ctx, "bulk", http.MethodPost, "/_bulk?refresh=wait_for&timeout=30s", &buf, &out); err != nil {
		return err
	}
	if !out.Errors {
		return nil
	}
	var (
		errs   []error
		failed int
		gone   bool
	)
	for _, item := range out.Items {
		for _, r := range item {
			if r.Status == http.StatusConflict || r.Error == nil {
				continue // a newer (or the same) version is stored: nothing to do
			}
			failed++
			if r.Error.Type == "index_not_found_exception" && !gone {
				gone = true
				errs = append(errs, errIndexGone)
			}
			if len(errs) < 5 {
				errs = append(errs, fmt.Errorf("%s/%s: status %d %s: %s", r.Index, r.ID, r.Status, r.Error.Type, r.Error.Reason))
			}
		}
	}
	if failed > 0 {
		return fmt.Errorf("opensearch bulk: %d of %d writes failed: %w", failed, len(out.Items), errors.Join(errs...))
	}
	return nil
}

// buildQuery is the OpenSearch form of the query every backend runs.
func buildQuery(q search.Query) map[string]any {
	var must []any
	for _, t := range search.Terms(q.Q) {
		should := []any{
			map[string]any{"match": map[string]any{"text_en": map[string]any{"query": t.Word, "boost": 3}}},
			map[string]any{"match": map[string]any{"text_ru": map[string]any{"query": t.Word, "boost": 3}}},
			map[string]any{"term": map[string]any{"tr": map[string]any{"value": t.Key, "boost": 2}}},
		}
		if t.Fuzzy > 0 {
			should = append(should, map[string]any{"fuzzy": map[string]any{"tr": map[string]any{
				"value": t.Key, "fuzziness": t.Fuzzy, "prefix_length": 0, "max_expansions": 50, "transpositions": false, "boost": 1,
			}}})
		}
		if t.IsPrefix && len(t.Key) >= 2 {
			should = append(should, map[string]any{"prefix": map[string]any{"tr": map[string]any{"value": t.Key, "boost": 1.5}}})
		}
		must = append(must, map[string]any{"bool": map[string]any{"should": should, "minimum_should_match": 1}})
	}
	filter := []any{}
	term := func(field, v string) {
		if v != "" {
			filter = append(filter, map[string]any{"term": map[string]any{field: v}})
		}
	}
	term("genre.id", q.Genre)
	term("artists.id", q.Artist)
	term("album.id", q.Album)
	if q.YearFrom != 0 || q.YearTo != 0 {
		r := map[string]any{}
		if q.YearFrom != 0 {
			r["gte"] = q.YearFrom
		}
		if q.YearTo != 0 {
			r["lte"] = q.YearTo
		}
		filter = append(filter, map[string]any{"range": map[string]any{"album.year": r}})
	}
	b := map[string]any{
		"filter":   filter,
		"must_not": []any{map[string]any{"term": map[string]any{"deleted": true}}},
	}
	if len(must) > 0 {
		b["must"] = must
	} else {
		b["must"] = []any{map[string]any{"match_all": map[string]any{}}}
	}
	return map[string]any{"bool": b}
}

type hitsAnswer struct {
	Hits struct {
		Total struct {
			Value int `json:"value"`
		} `json:"total"`
		Hits []struct {
			ID     string  `json:"_id"`
			Score  float64 `json:"_score"`
			Source source  `json:"_source"`
		} `json:"hits"`
	} `json:"hits"`
}

// Search implements search.Index.
func (s *Store) Search(ctx context.Context, q search.Query) (search.Result, error) {
	return searchIndex(ctx, s, s.alias, q)
}

func searchIndex(ctx context.Context, s *Store, index string, q search.Query) (search.Result, error) {
	q, err := q.Normalize()
	if err != nil {
		return search.Result{}, err
	}
	body := map[string]any{
		"query":            buildQuery(q),
		"from":             q.From(),
		"size":             q.Size,
		"track_total_hits": true,
		"track_scores":     true,
		"sort": []any{
			map[string]any{"_score": "desc"},
			map[string]any{"popularity": "desc"},
			map[string]any{"id": "asc"},
		},
		"_source": map[string]any{"excludes": []string{"text_en", "text_ru", "tr"}},
	}
	var out hitsAnswer
	if _, err := s.do(ctx, "search", http.MethodPost, "/"+url.PathEscape(index)+"/_search", jsonBody(body), &out); err != nil {
		return search.Result{}, err
	}
	res := search.Result{Total: out.Hits.Total.Value, Hits: make([]search.Hit, 0, len(out.Hits.Hits))}
	for _, h := range out.Hits.Hits {
		res.Hits = append(res.Hits, search.Hit{Track: h.Source.Track, Score: h.Score})
	}
	return res, nil
}

// Get implements search.Index.
func (s *Store) Get(ctx context.Context, ids ...string) (map[string]search.Track, error) {
	return getIndex(ctx, s, s.alias, ids)
}

func getIndex(ctx context.Context, s *Store, index string, ids []string) (map[string]search.Track, error) {
	out := make(map[string]search.Track, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	var ans struct {
		Docs []struct {
			ID     string `json:"_id"`
			Found  bool   `json:"found"`
			Source source `json:"_source"`
		} `json:"docs"`
	}
	body := map[string]any{"ids": ids}
	if _, err := s.do(ctx, "mget", http.MethodPost, "/"+url.PathEscape(index)+"/_mget?_source_excludes=text_en,text_ru,tr&realtime=true", jsonBody(body), &ans); err != nil {
		return nil, err
	}
	for _, d := range ans.Docs {
		if d.Found && !d.Source.Deleted {
			out[d.ID] = d.Source.Track
		}
	}
	return out, nil
}

// Count implements search.Index.
func (s *Store) Count(ctx context.Context) (int, error) { return countIndex(ctx, s, s.alias) }

func countIndex(ctx context.Context, s *Store, index string) (int, error) {
	var out struct {
		Count int `json:"count"`
	}
	body := map[string]any{"query": map[string]any{"bool": map[string]any{
		"must_not": []any{map[string]any{"term": map[string]any{"deleted": true}}},
	}}}
	if _, err := s.do(ctx, "count", http.MethodPost, "/"+url.PathEscape(index)+"/_count", jsonBody(body), &out); err != nil {
		return 0, err
	}
	return out.Count, nil
}

// Genres implements search.Store: a terms aggregation over genre.id of the
// live documents, with one document's genre (top_hits) for the name, which
// is not indexed.
func (s *Store) Genres(ctx context.Context) ([]search.GenreCount, error) {
	body := map[string]any{
		"size":  0,
		"query": map[string]any{"bool": map[string]any{"must_not": []any{map[string]any{"term": map[string]any{"deleted": true}}}}},
		"aggs": map[string]any{"genres": map[string]any{
			"terms": map[string]any{"field": "genre.id", "size": search.MaxGenres},
			"aggs": map[string]any{"one": map[string]any{
				"top_hits": map[string]any{"size": 1, "_source": map[string]any{"includes": []string{"genre"}}},
			}},
		}},
	}
	var ans struct {
		Aggregations struct {
			Genres struct {
				Buckets []struct {
					Key      string `json:"key"`
					DocCount int    `json:"doc_count"`
					One      struct {
						Hits struct {
							Hits []struct {
								Source struct {
									Genre *search.Genre `json:"genre"`
								} `json:"_source"`
							} `json:"hits"`
						} `json:"hits"`
					} `json:"one"`
				} `json:"buckets"`
			} `json:"genres"`
		} `json:"aggregations"`
	}
	if _, err := s.do(ctx, "genres", http.MethodPost, "/"+url.PathEscape(s.alias)+"/_search", jsonBody(body), &ans); err != nil {
		return nil, err
	}
	out := make([]search.GenreCount, 0, len(ans.Aggregations.Genres.Buckets))
	for _, b := range ans.Aggregations.Genres.Buckets {
		g := search.Genre{ID: b.Key}
		if hs := b.One.Hits.Hits; len(hs) > 0 && hs[0].Source.Genre != nil {
			g.Name = hs[0].Source.Genre.Name
		}
		out = append(out, search.GenreCount{Genre: g, Tracks: b.DocCount})
	}
	search.SortGenres(out)
	return out, nil
}

// purgePage is how many tombstones PurgeTombstones reads and deletes per
// request.
const purgePage = 1000

// PurgeTombstones implements search.Store on the alias's index (not on a
// rebuild target: see search.Store). It pages through the tombstones with
// version < below in id order, with their sequence numbers, and deletes each
// one conditionally (if_seq_no / if_primary_term): a tombstone that a newer
// write replaced since it was read is a 409, left alone, so a live document
// is never deleted. Core APIs only: _delete_by_query lives in the reindex
// module, which a minimal node does not have.
//
// Indices are created with index.gc_deletes 0 (and older ones get it), so
// OpenSearch forgets a purged tombstone's version at once (within its
// cached clock's 200 ms): an older write of the same id is then accepted
// like a first write, as with Bleve.
func (s *Store) PurgeTombstones(ctx context.Context, below uint64) (int, error) {
	if below == 0 {
		return 0, nil
	}
	targets, err := s.indicesOf(ctx, s.alias)
	if err != nil {
		return 0, err
	}
	if len(targets) == 0 {
		return 0, fmt.Errorf("opensearch: alias %s points at no index", s.alias)
	}
	if err := s.upgrade(ctx, targets); err != nil {
		return 0, err
	}
	vr := map[string]any{"lt": below}
	if below > math.MaxInt64 {
		vr = map[string]any{"lte": int64(math.MaxInt64)}
	}
	query := map[string]any{"bool": map[string]any{"filter": []any{
		map[string]any{"term": map[string]any{"deleted": true}},
		map[string]any{"range": map[string]any{"version": vr}},
	}}}
	index := url.PathEscape(strings.Join(targets, ","))
	removed := 0
	var after []any
	for {
		body := map[string]any{
			"query":               query,
			"size":                purgePage,
			"sort":                []any{map[string]any{"id": "asc"}},
			"_source":             false,
			"seq_no_primary_term": true,
			"track_total_hits":    false,
		}
		if after != nil {
			body["search_after"] = after
		}
		var page struct {
			Hits struct {
				Hits []struct {
					Index       string `json:"_index"`
					ID          string `json:"_id"`
					SeqNo       int64  `json:"_seq_no"`
					PrimaryTerm int64  `json:"_primary_term"`
					Sort        []any  `json:"sort"`
				} `json:"hits"`
			} `json:"hits"`
		}
		if _, err := s.do(ctx, "find tombstones", http.MethodPost, "/"+index+"/_search", jsonBody(body), &page); err != nil {
			return removed, err
		}
		hits := page.Hits.Hits
		if len(hits) == 0 {
			return removed, nil
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		for _, h := range hits {
			_ = enc.Encode(map[string]any{"delete": map[string]any{
				"_index": h.Index, "_id": h.ID, "if_seq_no": h.SeqNo, "if_primary_term": h.PrimaryTerm,
			}})
		}
		var out struct {
			Items []map[string]struct {
				ID     string `json:"_id"`
				Status int    `json:"status"`
				Result string `json:"result"`
				Error  *struct {
					Type   string `json:"type"`
					Reason string `json:"reason"`
				} `json:"error"`
			} `json:"items"`
		}
		if _, err := s.do(ctx, "purge tombstones", http.MethodPost, "/_bulk?refresh=wait_for&timeout=30s", &buf, &out); err != nil {
			return removed, err
		}
		var errs []error
		for _, item := range out.Items {
			for _, r := range item {
				switch {
				case r.Result == "deleted":
					removed++
				case r.Status == http.StatusConflict || r.Status == http.StatusNotFound:
					// replaced by a newer write, or gone already: keep it / nothing to do
				case r.Error != nil && len(errs) < 5:
					errs = append(errs, fmt.Errorf("%s: status %d %s: %s", r.ID, r.Status, r.Error.Type, r.Error.Reason))
				}
			}
		}
		if len(errs) > 0 {
			return removed, fmt.Errorf("opensearch purge tombstones: %w", errors.Join(errs...))
		}
		if len(hits) < purgePage {
			return removed, nil
		}
		after = hits[len(hits)-1].Sort
	}
}

// BeginRebuild implements search.Store.
func (s *Store) BeginRebuild(ctx context.Context) (search.Rebuild, error) {
	pending, err := s.indicesOf(ctx, s.rebuildAlias())
	if err != nil {
		return nil, err
	}
	for _, p := range pending {
		if age, ok := s.age(p); ok && age > StaleRebuild {
			// Its reindex died (a killed CLI or pod): writers have been
			// feeding an index nobody will swap in.
			if _, err := s.do(ctx, "drop dead rebuild "+p, http.MethodDelete, "/"+url.PathEscape(p), nil, nil, http.StatusNotFound); err != nil {
				return nil, err
			}
			continue
		}
		return nil, fmt.Errorf("opensearch: a rebuild (%s) is already registered under %s", p, s.rebuildAlias())
	}
	name := s.newName()
	if err := s.createIndex(ctx, name, map[string]any{s.rebuildAlias(): map[string]any{}}); err != nil {
		return nil, err
	}
	return &rebuild{s: s, name: name}, nil
}

type rebuild struct {
	s    *Store
	name string
}

func (r *rebuild) Name() string { return r.name }

func (r *rebuild) Apply(ctx context.Context, ops []search.Op) error {
	return r.s.bulk(ctx, []string{r.name}, ops)
}

func (r *rebuild) Search(ctx context.Context, q search.Query) (search.Result, error) {
	return searchIndex(ctx, r.s, r.name, q)
}

func (r *rebuild) Get(ctx context.Context, ids ...string) (map[string]search.Track, error) {
	return getIndex(ctx, r.s, r.name, ids)
}

func (r *rebuild) Count(ctx context.Context) (int, error) { return countIndex(ctx, r.s, r.name) }

// Commit moves the alias in one atomic _aliases call, then deletes the old
// indices (searches already running on them finish first: OpenSearch keeps a
// deleted index's open searchers until they complete).
func (r *rebuild) Commit(ctx context.Context) error {
	s := r.s
	old, err := s.indicesOf(ctx, s.alias)
	if err != nil {
		return err
	}
	actions := []any{
		map[string]any{"add": map[string]any{"index": r.name, "alias": s.alias}},
		map[string]any{"remove": map[string]any{"index": r.name, "alias": s.rebuildAlias()}},
	}
	for _, o := range old {
		if o != r.name {
			actions = append(actions, map[string]any{"remove": map[string]any{"index": o, "alias": s.alias}})
		}
	}
	if _, err := s.do(ctx, "swap alias", http.MethodPost, "/_aliases", jsonBody(map[string]any{"actions": actions}), nil); err != nil {
		return err
	}
	var errs []error
	for _, o := range old {
		if o != r.name {
			if _, err := s.do(ctx, "delete old index "+o, http.MethodDelete, "/"+url.PathEscape(o), nil, nil, http.StatusNotFound); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// Abort deletes the new index (and with it the rebuild alias).
func (r *rebuild) Abort(ctx context.Context) error {
	_, err := r.s.do(ctx, "delete rebuild "+r.name, http.MethodDelete, "/"+url.PathEscape(r.name), nil, nil, http.StatusNotFound)
	return err
}

var _ search.Store = (*Store)(nil)
