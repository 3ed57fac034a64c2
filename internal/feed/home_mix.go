package feed

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/internal/postgres"
	"github.com/overture-music/overture/internal/recommend/result"
)

// The daily mix: a blend of the listener's favourites (their most played
// tracks of the 90 days before the mix is made) and the ALS
// discoveries of their stored result (without what they heard), made at
// their first feed of a UTC day and stored, so that it stays the same all
// day although the recompute, every six hours, stores new discoveries.

//go:embed migrations/*.sql
var migrations embed.FS

// migrate creates the feed's own table (feed_daily_mix).
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return postgres.MigrateOwner(ctx, pool, "feed", migrations)
}

// Daily mix settings.
const (
	MixFavourites       = 10
	MixDiscoveries      = 20
	mixDiscoverySection = "daily-mix" // the stored result's ALS section
)

// mix is a listener's daily mix.
type mix struct {
	Day      string
	Tracks   []string
	Familiar []bool
}

// mixOf reads the listener's mix of now's day, or makes it from their
// favourites (most played first) and stores it.
func (s *Service) mixOf(ctx context.Context, user string, now time.Time, stored *result.Body, favourites []string, heard map[string]bool) (mix, error) {
	day := now.UTC().Format(time.DateOnly)
	var m mix
	var d time.Time
	err := s.Pool.QueryRow(ctx, `SELECT day, tracks, familiar FROM feed_daily_mix WHERE user_id = $1`, user).Scan(&d, &m.Tracks, &m.Familiar)
	if err == nil && d.Format(time.DateOnly) == day {
		m.Day = day
		return m, nil
	}
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return mix{}, fmt.Errorf("reading the daily mix of %s: %w", user, err)
	}
	dayStart, _ := time.Parse(time.DateOnly, day)
	favs := slices.Clone(favourites[:min(len(favourites), MixFavourites)])
	var finds []string
	for _, sec := range stored.Sections {
		if sec.ID != mixDiscoverySection {
			continue
		}
		for _, t := range sec.Tracks {
			if len(finds) < MixDiscoveries && !heard[t.TrackID] {
				finds = append(finds, t.TrackID)
			}
		}
	}
	m = blend(user, day, favs, finds)
	err = s.Pool.QueryRow(ctx, `
		INSERT INTO feed_daily_mix (user_id, day, made_at, tracks, familiar) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (user_id) DO UPDATE SET day = excluded.day, made_at = excluded.made_at, tracks = excluded.tracks, familiar = excluded.familiar
		WHERE feed_daily_mix.day < excluded.day
		RETURNING user_id`, user, dayStart, now, m.Tracks, m.Familiar).Scan(&user)
	if errors.Is(err, pgx.ErrNoRows) {
		// A concurrent first request of the day stored its own: serve
		// what is stored, so every request of the day agrees.
		err = s.Pool.QueryRow(ctx, `SELECT tracks, familiar FROM feed_daily_mix WHERE user_id = $1`, user).Scan(&m.Tracks, &m.Familiar)
	}
	if err != nil {
		return mix{}, fmt.Errorf("storing the daily mix of %s: %w", user, err)
	}
	return m, nil
}

// blend shuffles favourites and discoveries, each in an order drawn from
// the listener and the day, and deals one favourite after every two
// discoveries.
func blend(user, day string, favs, finds []string) mix {
	h := fnv.New64a()
	_, _ = h.Write([]byte(user + "\x00" + day))
	rng := rand.New(rand.NewPCG(h.Sum64(), 0x6d6978))
	rng.Shuffle(len(favs), func(i, j int) { favs[i], favs[j] = favs[j], favs[i] })
	rng.Shuffle(len(finds), func(i, j int) { finds[i], finds[j] = finds[j], finds[i] })
	m := mix{Day: day, Tracks: []string{}, Familiar: []bool{}}
	for len(favs) > 0 || len(finds) > 0 {
		for range 2 {
			if len(finds) > 0 {
				m.Tracks, m.Familiar = append(m.Tracks, finds[0]), append(m.Familiar, false)
				finds = finds[1:]
			}
		}
		if len(favs) > 0 {
			m.Tracks, m.Familiar = append(m.Tracks, favs[0]), append(m.Familiar, true)
			favs = favs[1:]
		}
	}
	return m
}
