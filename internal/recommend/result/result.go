// Package result stores what the recommendation recompute made for each
// listener, so that serving it is one primary-key read of bytes made ahead
// (issue 14: computed deferred, served in constant time).
//
// A stored result is the exact JSON body the API answers — sections, each
// with the reason it is there — with its ETag (a hash of the body), the
// model and version that made it and when. Make turns trained models into
// results; Store writes them in batches and reads one. A row is only ever
// replaced by a result made later, so an older run resumed after a newer one
// finished changes nothing.
package result

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/internal/inbox"
	"github.com/overture-music/overture/internal/outbox"
	"github.com/overture-music/overture/internal/postgres"
	"github.com/overture-music/overture/internal/recommend"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate creates or updates the recommendations' tables (owner
// "recommend"): recommend_result; the refresh jobs (recommend_job, used by
// internal/recommend/job); what the recompute stores for one listener's
// refresh and the similar items (recommend_similar, recommend_factors,
// internal/recommend/artifact); the listening counts of the incremental
// refresh (recommend_dirty) — and the outbox and inbox the jobs' events go
// through.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return postgres.MigrateOwner(ctx, pool, "recommend", migrations, outbox.Migrate, inbox.Migrate)
}

// ErrNone: the listener has no stored result (a new listener, or one the
// last recompute did not reach): serve the fallback.
var ErrNone = errors.New("result: no stored recommendations")

// Track is one recommended track.
type Track struct {
	TrackID string  `json:"track_id"`
	Score   float32 `json:"score"`
	// Because is the track the listener played that this one is most
	// similar to (co-occurrence sections only).
	Because string `json:"because_track_id,omitempty"`
}

// Section is a part of the listener's recommendations and why it is there.
type Section struct {
	ID     string  `json:"id"`
	Reason string  `json:"reason"`
	Model  string  `json:"model"`
	Tracks []Track `json:"tracks"`
}

// Body is the stored (and served) JSON.
type Body struct {
	UserID   string    `json:"user_id"`
	Model    string    `json:"model"`
	Version  string    `json:"version"`
	MadeAt   time.Time `json:"made_at"`
	Sections []Section `json:"sections"`
}

// Result is one listener's stored recommendations.
type Result struct {
	UserID  string
	Model   string
	Version string
	MadeAt  time.Time
	// ETag is the quoted strong validator of Body.
	ETag string
	Body []byte
}

// New encodes b into a Result.
func New(b Body) (Result, error) {
	raw, err := json.Marshal(b)
	if err != nil {
		return Result{}, fmt.Errorf("encoding the recommendations of %s: %w", b.UserID, err)
	}
	sum := sha256.Sum256(raw)
	return Result{UserID: b.UserID, Model: b.Model, Version: b.Version, MadeAt: b.MadeAt.UTC(), ETag: `"` + hex.EncodeToString(sum[:12]) + `"`, Body: raw}, nil
}

// Models are what Make reads from.
type Models struct {
	Data   *recommend.Data
	Tracks *recommend.Cooccurrence
	ALS    *recommend.ALS
}

// Make computes every listener's result with history in m.Data: a "daily
// mix" section of the ALS top n and a "because you listened to" section of
// the co-occurrence top n, each with the listener's played tracks left out.
// fn receives each listener's result, from workers goroutines.
func Make(ctx context.Context, m Models, version string, madeAt time.Time, n, workers int, fn func(Result) error) error {
	d := m.Data
	var users []int
	for u := 0; u < d.R.Rows; u++ {
		if d.R.Ptr[u+1] > d.R.Ptr[u] {
			users = append(users, u)
		}
	}
	// Each listener's slot is written by one worker; RecommendAll returns
	// after every worker has finished.
	mix := make([][]recommend.Scored, d.R.Rows)
	err := recommend.RecommendAll(ctx, m.ALS, d.R, users, n, workers, func(u int, top []recommend.Scored) error {
		mix[u] = top
		return nil
	})
	if err != nil {
		return err
	}
	ids := func(top []recommend.Scored, because func(int32) string) []Track {
		out := make([]Track, 0, len(top))
		for _, s := range top {
			t := Track{TrackID: d.Tracks.ID(s.Track), Score: s.Score}
			if because != nil {
				// no similar track played: no reason to show it here
				if t.Because = because(s.Track); t.Because == "" {
					continue
				}
			}
			out = append(out, t)
		}
		return out
	}
	return recommend.RecommendAll(ctx, m.Tracks, d.R, users, n, workers, func(u int, top []recommend.Scored) error {
		body := Body{
			UserID: d.Users.ID(int32(u)), Model: m.ALS.Name() + "+" + m.Tracks.Name(), Version: version, MadeAt: madeAt,
			Sections: []Section{
				DailyMix(m.ALS.Name(), ids(mix[u], nil)),
				BecauseYouListened(m.Tracks.Name(), ids(top, func(j int32) string {
					x, _, ok := m.Tracks.Because(u, j)
					if !ok {
						return ""
					}
					return d.Tracks.ID(x)
				})),
			},
		}
		r, err := New(body)
		if err != nil {
			return err
		}
		return fn(r)
	})
}

// DailyMix is the section of a factorisation's top tracks.
func DailyMix(model string, tracks []Track) Section {
	return Section{ID: "daily-mix", Model: model, Reason: "tracks new to you that listeners with your taste play", Tracks: tracks}
}

// BecauseYouListened is the section of co-occurrence's top tracks, each
// with the played track it is most similar to.
func BecauseYouListened(model string, tracks []Track) Section {
	return Section{ID: "because-you-listened", Model: model, Reason: "often played by the listeners of tracks you played", Tracks: tracks}
}

// Store keeps results in PostgreSQL (table recommend_result).
type Store struct{ Pool *pgxpool.Pool }

// Put writes results in one statement: each replaces the listener's stored
// result only if it was made later. It returns how many rows changed.
func (s Store) Put(ctx context.Context, rs []Result) (int64, error) {
	if len(rs) == 0 {
		return 0, nil
	}
	users, models, versions, etags := make([]string, len(rs)), make([]string, len(rs)), make([]string, len(rs)), make([]string, len(rs))
	made := make([]time.Time, len(rs))
	bodies := make([][]byte, len(rs))
	for k, r := range rs {
		users[k], models[k], versions[k], made[k], etags[k], bodies[k] = r.UserID, r.Model, r.Version, r.MadeAt, r.ETag, r.Body
	}
	tag, err := s.Pool.Exec(ctx, `
		INSERT INTO recommend_result (user_id, model, version, made_at, etag, body)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[], $6::bytea[])
		ON CONFLICT (user_id) DO UPDATE SET model = excluded.model, version = excluded.version,
			made_at = excluded.made_at, etag = excluded.etag, body = excluded.body
		WHERE recommend_result.made_at < excluded.made_at`,
		users, models, versions, made, etags, bodies)
	if err != nil {
		return 0, fmt.Errorf("storing %d recommendation results: %w", len(rs), err)
	}
	return tag.RowsAffected(), nil
}

// Get reads user's stored result, or ErrNone.
func (s Store) Get(ctx context.Context, user string) (Result, error) {
	r := Result{UserID: user}
	err := s.Pool.QueryRow(ctx, `SELECT model, version, made_at, etag, body FROM recommend_result WHERE user_id = $1`, user).
		Scan(&r.Model, &r.Version, &r.MadeAt, &r.ETag, &r.Body)
	if errors.Is(err, pgx.ErrNoRows) {
		return Result{}, ErrNone
	}
	if err != nil {
		return Result{}, fmt.Errorf("reading the recommendations of %s: %w", user, err)
	}
	return r, nil
}
