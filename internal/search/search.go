// Package search is the catalog's read model: one denormalized document per
// published track, searched as the listener types.
//
// The write model (PostgreSQL) is the truth; this read model follows it through
// change events and can be rebuilt from it at any time (see Reindex). Two
// backends implement [Store] with the same behaviour, checked by one conformance
// suite (searchtest): Bleve, embedded in the process, for the laptop default, and
// OpenSearch for deployments. Behaviour that the engines would do differently —
// transliteration, tokenizing the query, fuzziness per token — is done here in
// Go so both answer the same query the same way.
//
// Every write carries a version (the commit LSN of the change that caused it);
// a write whose version is not greater than the stored one is ignored, and a
// delete leaves a versioned tombstone, so replayed or reordered changes never
// regress a document nor resurrect a deleted one.
package search

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"time"
)

// Track is the denormalized search document of one published track.
type Track struct {
	ID          string    `json:"id"`
	Title       string    `json:"title"`
	Album       *Album    `json:"album,omitempty"`
	Artists     []Artist  `json:"artists"`
	Genre       *Genre    `json:"genre,omitempty"`
	DurationMS  int       `json:"duration_ms"`
	Popularity  int64     `json:"popularity"`
	Explicit    bool      `json:"explicit"`
	PublishedAt time.Time `json:"published_at,omitzero"`
	Renditions  []string  `json:"renditions"`
	// Version is the commit LSN the document was built for (read-only: set
	// by the store from the write that stored it).
	Version uint64 `json:"version"`
}

// Album is the part of an album a track document carries.
type Album struct {
	ID    string `json:"id"`
	Title string `json:"title"`
	Year  int    `json:"year,omitempty"`
}

// Artist is the part of an artist a track document carries.
type Artist struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Genre is the part of a genre a track document carries.
type Genre struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// GenreCount is a genre with the number of live documents that carry it.
type GenreCount struct {
	Genre
	Tracks int `json:"track_count"`
}

// MaxGenres bounds Store.Genres: the catalog's genres are a short curated
// list, far below it.
const MaxGenres = 1000

// SortGenres orders genres by name, then id, as Store.Genres answers them.
func SortGenres(gs []GenreCount) {
	slices.SortFunc(gs, func(a, b GenreCount) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID))
	})
}

// Op is one versioned write: an upsert when Doc is set, else a delete of ID.
type Op struct {
	ID      string
	Version uint64
	Doc     *Track
}

// Upsert returns the op that stores t at version v.
func Upsert(t Track, v uint64) Op { t.Version = v; return Op{ID: t.ID, Version: v, Doc: &t} }

// Delete returns the op that removes id at version v (leaving a tombstone).
func Delete(id string, v uint64) Op { return Op{ID: id, Version: v} }

// Query is a search request. Every field is optional; an empty Q browses by
// popularity.
type Query struct {
	Q        string
	Genre    string // genre id
	Artist   string // artist id
	Album    string // album id
	YearFrom int    // inclusive; 0 = open
	YearTo   int    // inclusive; 0 = open
	Page     int    // 1-based; 0 means 1
	Size     int    // 0 means DefaultSize
}

const (
	// DefaultSize is the page size when Query.Size is 0.
	DefaultSize = 20
	// MaxSize bounds Query.Size.
	MaxSize = 100
	// MaxWindow bounds (Page × Size): deep pagination is what a listener never
	// does and what costs an engine the most.
	MaxWindow = 10000
)

// ErrBadQuery marks a query that cannot be run as asked.
var ErrBadQuery = errors.New("bad search query")

// Normalize applies defaults and checks bounds, returning an error wrapping
// ErrBadQuery.
func (q Query) Normalize() (Query, error) {
	if q.Page == 0 {
		q.Page = 1
	}
	if q.Size == 0 {
		q.Size = DefaultSize
	}
	switch {
	case q.Page < 1:
		return q, errors.Join(ErrBadQuery, errors.New("page must be 1 or more"))
	case q.Size < 1 || q.Size > MaxSize:
		return q, errors.Join(ErrBadQuery, errors.New("size must be between 1 and 100"))
	case q.Page*q.Size > MaxWindow:
		return q, errors.Join(ErrBadQuery, errors.New("page × size must not exceed 10000"))
	case q.YearFrom != 0 && q.YearTo != 0 && q.YearFrom > q.YearTo:
		return q, errors.Join(ErrBadQuery, errors.New("year_from is after year_to"))
	case len(q.Q) > 200:
		return q, errors.Join(ErrBadQuery, errors.New("q is longer than 200 bytes"))
	}
	return q, nil
}

// From is the offset of the first hit of the page.
func (q Query) From() int { return (q.Page - 1) * q.Size }

// Result is one page of hits.
type Result struct {
	Total int   `json:"total"`
	Hits  []Hit `json:"hits"`
}

// Hit is one matching track with its relevance score.
type Hit struct {
	Track
	Score float64 `json:"score"`
}

// Index is what the indexer writes and the query API reads.
type Index interface {
	// Apply writes ops in bulk. An op whose version is not greater than the
	// stored version of its document (or tombstone) is skipped, so Apply is
	// idempotent and order-insensitive. Applied writes are searchable when
	// Apply returns.
	Apply(ctx context.Context, ops []Op) error
	// Search runs q (already normalized or not).
	Search(ctx context.Context, q Query) (Result, error)
	// Get returns the live documents among ids.
	Get(ctx context.Context, ids ...string) (map[string]Track, error)
	// Count returns the number of live documents.
	Count(ctx context.Context) (int, error)
}

// Store is an Index behind an alias that a reindex can swap with no downtime.
type Store interface {
	Index
	// BeginRebuild creates an empty physical index and registers it as a
	// second write target: from now on, Apply on the Store writes to both,
	// so changes made while the rebuild copies the write model are not lost.
	BeginRebuild(ctx context.Context) (Rebuild, error)
	// PurgeTombstones removes the tombstones of the live index whose
	// version is less than below and returns how many it removed. Live
	// documents and tombstones at or above below stay, so Search, Get and
	// Count answer the same before and after.
	//
	// Safe when below is at most the indexer's contiguous applied watermark
	// minus a margin: a tombstone only protects a deleted document against
	// an older write still in flight (a replayed or reordered change with a
	// lower version). Every change at or below the watermark has been
	// applied, and the indexer writes what it reads from the write model
	// after the change committed, never an event's row image, so a
	// redelivered change below the watermark re-reads the row as deleted and
	// writes a delete, not the old row. After the purge, a write whose
	// version is below a purged tombstone's is accepted like a first write:
	// that is the price of not keeping tombstones forever, and the reason
	// for the bound.
	//
	// A rebuild target keeps its tombstones until it is swapped in: the
	// reindex copy writes snapshot rows at RebuildVersion, below every
	// tombstone, and only the tombstone stops it from restoring a row that
	// was deleted after the snapshot was taken.
	PurgeTombstones(ctx context.Context, below uint64) (int, error)
	// Genres returns every genre that live documents of the live index
	// carry (at most MaxGenres), each with how many carry it, sorted by
	// name then id (SortGenres): an aggregation over the genre id, the name
	// taken from one of its documents.
	Genres(ctx context.Context) ([]GenreCount, error)
	// Close releases the store (not the data).
	Close() error
}

// Rebuild is a physical index being filled by a reindex.
type Rebuild interface {
	Index
	// Name is the physical index name (OpenSearch index, Bleve directory).
	Name() string
	// Commit atomically points the alias at the new index, unregisters it as
	// a pending target and drops the old index once no reader uses it.
	Commit(ctx context.Context) error
	// Abort unregisters and drops the new index.
	Abort(ctx context.Context) error
}

// RebuildVersion is the version reindex writes snapshot documents with: lower
// than any real commit LSN, so a change the indexer applies while the
// snapshot is copied always wins, and the snapshot only fills documents no
// change has touched since the rebuild began.
const RebuildVersion uint64 = 1
