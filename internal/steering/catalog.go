package steering

import (
	"context"
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Why steering reads the catalog: it is the authority on what may be played.
// Steering signs only renditions of published tracks, with the premium
// requirement the catalog sets on each rendition, and carries that
// requirement inside the token so a POP never asks the catalog per request.
// The queries are read-only and run on the catalog's own tables (same
// PostgreSQL; the catalog service owns and migrates them).

// ErrTrackUnavailable means the catalog has no published track with the id:
// unknown, draft, unpublished or deleted (a listener cannot tell which).
var ErrTrackUnavailable = errors.New("no published track with this id")

// Catalog reads tracks and renditions from the catalog's tables.
type Catalog struct {
	Pool *pgxpool.Pool
}

// Rendition is one stored rendition of a track as the catalog lists it.
type Rendition struct {
	Kind    string
	Key     string // S3 key: an HLS playlist or a whole file
	Codec   string // RFC 6381, "" when ingestion did not record it
	Bitrate int    // bit/s, 0 when unknown
	Premium bool
}

// IsHLS reports whether the rendition is an HLS playlist (its objects are
// everything in the playlist's directory).
func (r Rendition) IsHLS() bool { return strings.HasSuffix(r.Key, ".m3u8") }

// TrackMedia is what steering signs for one published track.
type TrackMedia struct {
	TrackID    string
	Renditions []Rendition
	// Prefix is the track's media prefix: the longest common directory of
	// its renditions' keys (tracks/<id>/<version>/). One token covers it.
	Prefix string
	// GainDB is the ReplayGain-style gain players apply; nil when unmeasured.
	GainDB   *float64
	CoverKey string // "" when the track has no cover
	PeaksKey string // "" when no waveform was computed
}

var uuidRe = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// Media returns the published track id with its renditions, or
// ErrTrackUnavailable.
func (c *Catalog) Media(ctx context.Context, id string) (TrackMedia, error) {
	if !uuidRe.MatchString(id) {
		return TrackMedia{}, ErrTrackUnavailable
	}
	m := TrackMedia{TrackID: id}
	var state string
	var cover, peaks *string
	err := c.Pool.QueryRow(ctx, `SELECT state, replay_gain_db, cover_key, peaks_key FROM track WHERE id = $1`, id).
		Scan(&state, &m.GainDB, &cover, &peaks)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && state != "published") {
		return TrackMedia{}, ErrTrackUnavailable
	}
	if err != nil {
		return TrackMedia{}, fmt.Errorf("read track %s from the catalog: %w", id, err)
	}
	if cover != nil {
		m.CoverKey = *cover
	}
	if peaks != nil {
		m.PeaksKey = *peaks
	}
	rows, err := c.Pool.Query(ctx, `SELECT kind, storage_key, coalesce(codec, ''), coalesce(bitrate, 0), premium
		FROM track_rendition WHERE track_id = $1 ORDER BY premium, coalesce(bitrate, 0), kind`, id)
	if err != nil {
		return TrackMedia{}, fmt.Errorf("read renditions of track %s: %w", id, err)
	}
	m.Renditions, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (Rendition, error) {
		var r Rendition
		err := row.Scan(&r.Kind, &r.Key, &r.Codec, &r.Bitrate, &r.Premium)
		r.Key = strings.TrimPrefix(r.Key, "/")
		return r, err
	})
	if err != nil {
		return TrackMedia{}, fmt.Errorf("read renditions of track %s: %w", id, err)
	}
	if len(m.Renditions) == 0 {
		return TrackMedia{}, ErrTrackUnavailable
	}
	m.Prefix = commonDir(m.Renditions)
	return m, nil
}

// commonDir is the longest directory (ending in "/") containing every
// rendition's key.
func commonDir(rs []Rendition) string {
	p := path.Dir(rs[0].Key) + "/"
	for _, r := range rs[1:] {
		for !strings.HasPrefix(r.Key, p) && p != "" {
			p = strings.TrimSuffix(p, "/")
			if i := strings.LastIndexByte(p, '/'); i >= 0 {
				p = p[:i+1]
			} else {
				p = ""
			}
		}
	}
	if p == "./" {
		return ""
	}
	return p
}

// path returns the part of the media prefix a rendition occupies: its
// directory for HLS (every playlist, init section and segment in it), else
// its file.
func (m TrackMedia) path(r Rendition) string {
	rel := strings.TrimPrefix(r.Key, m.Prefix)
	if r.IsHLS() {
		if d := path.Dir(rel); d != "." {
			return d + "/"
		}
	}
	return rel
}

// PremiumPaths lists the paths below Prefix of the premium renditions (the
// token's premium paths). A premium rendition whose objects share a
// directory with a free one would make the free one premium too, so HLS
// renditions are expected in a directory each, as ingestion writes them.
func (m TrackMedia) PremiumPaths() []string {
	var out []string
	for _, r := range m.Renditions {
		if r.Premium {
			out = append(out, m.path(r))
		}
	}
	return out
}

// Master is the key of the track's master playlist: a rendition whose key
// is a master.m3u8, else master.m3u8 in the media prefix when the track has
// HLS renditions (ingestion writes it there), else "".
func (m TrackMedia) Master() string {
	hls := false
	for _, r := range m.Renditions {
		if path.Base(r.Key) == "master.m3u8" {
			return r.Key
		}
		hls = hls || r.IsHLS()
	}
	if hls {
		return m.Prefix + "master.m3u8"
	}
	return ""
}
