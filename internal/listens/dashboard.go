package listens

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/overture-music/overture/internal/problem"
	"github.com/overture-music/overture/internal/server"
	"github.com/overture-music/overture/internal/stats"
)

// The dashboards (artists' and admins' view of the listening) and the stream
// counts the query API shows on track and album cards.
//
// Who may read a dashboard: accounts carry roles (listener, admin) and no
// link to an artist — there is no artist role and no account ↔ artist
// relation anywhere (internal/auth, internal/token) — so no request can be
// recognised as "this artist's own". Every dashboard scope, the whole
// catalogue included, is therefore for admins only; an artist's people see
// their numbers through an admin until accounts can be linked to artists.

// Dashboard limits.
const (
	// MaxDashboardDays bounds a dashboard's date range.
	MaxDashboardDays = 366
	// MaxCatalogueStreamDays bounds the catalogue-wide streams per day per
	// track, whose size grows with the catalogue (tracks × days).
	MaxCatalogueStreamDays = 31
	// MaxScopeTracks bounds the track ids of one dashboard request (an
	// album's tracks fit many times over).
	MaxScopeTracks = 200
	// MaxCountTracks bounds the track ids of one stream-count request (the
	// query API asks once per answer, for at most 100 cards).
	MaxCountTracks = 100
	// maxTrackID and maxArtist bound the ids and names accepted.
	maxTrackID = 64
	maxArtist  = 512
)

// dashboardRoutes are the admin dashboards and the public stream counts.
var dashboardRoutes = []server.Route{
	{Method: http.MethodGet, Path: "/v1/dashboard/streams"},
	{Method: http.MethodGet, Path: "/v1/dashboard/audience"},
	{Method: http.MethodGet, Path: "/v1/stream-counts"},
}

// badParam is the 400 naming an unusable query parameter.
func badParam(name, format string, args ...any) *problem.Problem {
	why := fmt.Sprintf(format, args...)
	p := problem.New(http.StatusBadRequest, "invalid-parameter", name+": "+why)
	p.Extra = map[string]any{"errors": map[string]string{name: why}}
	return p
}

// Scope is what a dashboard covers: the listens of the given tracks
// (a track, an album's tracks), of an artist (by name, as listens carry
// it), of both, or — neither given — of the whole catalogue.
type Scope struct {
	TrackIDs  []string `json:"track_ids,omitempty"`
	Artist    string   `json:"artist,omitempty"`
	Catalogue bool     `json:"catalogue"`
}

// trackIDs reads the repeated parameter name: each id non-empty and at most
// maxTrackID bytes, at most max distinct ids (duplicates dropped, order kept).
func trackIDs(q url.Values, name string, max int) ([]string, error) {
	var out []string
	for i, id := range q[name] {
		switch {
		case id == "":
			return nil, badParam(name, "value %d is empty", i+1)
		case len(id) > maxTrackID:
			return nil, badParam(name, "value %d is longer than %d bytes", i+1, maxTrackID)
		}
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	if len(out) > max {
		return nil, badParam(name, "%d track ids; at most %d per request", len(out), max)
	}
	return out, nil
}

func parseScope(q url.Values) (Scope, error) {
	ids, err := trackIDs(q, "track_id", MaxScopeTracks)
	if err != nil {
		return Scope{}, err
	}
	s := Scope{TrackIDs: ids}
	switch a := q["artist"]; {
	case len(a) > 1:
		return s, badParam("artist", "give it once")
	case len(a) == 1 && a[0] == "":
		return s, badParam("artist", "is empty (leave it out for the whole catalogue)")
	case len(a) == 1 && len(a[0]) > maxArtist:
		return s, badParam("artist", "longer than %d bytes", maxArtist)
	case len(a) == 1:
		s.Artist = a[0]
	}
	s.Catalogue = len(s.TrackIDs) == 0 && s.Artist == ""
	return s, nil
}

// Range is a dashboard's period: whole UTC days from From to To, both
// included.
type Range struct {
	From string `json:"from"`
	To   string `json:"to"`
	from time.Time
	to   time.Time // the day after To (exclusive)
}

// parseRange reads from and to (YYYY-MM-DD, UTC). Defaults: to is today,
// from the 30 days ending with to. from must not be after to nor after
// today, and the range holds at most maxDays days.
func parseRange(q url.Values, now time.Time, maxDays int) (Range, error) {
	today := stats.DayStart(now)
	day := func(name string, def time.Time) (time.Time, error) {
		v := q[name]
		switch {
		case len(v) == 0:
			return def, nil
		case len(v) > 1:
			return time.Time{}, badParam(name, "give it once")
		}
		d, err := time.Parse(time.DateOnly, v[0])
		if err != nil {
			return time.Time{}, badParam(name, "%q is not a date (YYYY-MM-DD)", v[0])
		}
		return d, nil
	}
	to, err := day("to", today)
	if err != nil {
		return Range{}, err
	}
	from, err := day("from", to.AddDate(0, 0, -29))
	if err != nil {
		return Range{}, err
	}
	switch days := int(to.Sub(from).Hours()/24) + 1; {
	case from.After(to):
		return Range{}, badParam("from", "%s is after to %s", from.Format(time.DateOnly), to.Format(time.DateOnly))
	case from.After(today):
		return Range{}, badParam("from", "%s is in the future (today is %s, UTC)", from.Format(time.DateOnly), today.Format(time.DateOnly))
	case days > maxDays:
		return Range{}, badParam("from", "the range %s .. %s is %d days; at most %d", from.Format(time.DateOnly), to.Format(time.DateOnly), days, maxDays)
	}
	return Range{From: from.Format(time.DateOnly), To: to.Format(time.DateOnly), from: from, to: to.AddDate(0, 0, 1)}, nil
}

func (s Scope) filter() stats.Filter { return stats.Filter{TrackIDs: s.TrackIDs, Artist: s.Artist} }

// StreamsDashboard is GET /v1/dashboard/streams.
type StreamsDashboard struct {
	Scope Scope            `json:"scope"`
	Range Range            `json:"range"`
	Days  []stats.TrackDay `json:"days"`
}

// dashboardStreams is GET /v1/dashboard/streams?track_id=&artist=&from=&to=
// (admin): streams and unique listeners per UTC day per track.
func (s *Service) dashboardStreams(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	sc, err := parseScope(q)
	if err != nil {
		return err
	}
	max := MaxDashboardDays
	if sc.Catalogue {
		max = MaxCatalogueStreamDays
	}
	rg, err := parseRange(q, s.now(), max)
	if err != nil {
		return err
	}
	days, err := s.Stats.StreamsPerDay(r.Context(), sc.filter(), rg.from, rg.to)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, StreamsDashboard{Scope: sc, Range: rg, Days: nonNil(days)})
	return nil
}

// AudienceDashboard is GET /v1/dashboard/audience: stats.Audience with the
// free share beside the premium one.
type AudienceDashboard struct {
	Scope Scope `json:"scope"`
	Range Range `json:"range"`
	stats.Audience
	FreeShare float64 `json:"free_share"`
}

// dashboardAudience is GET /v1/dashboard/audience?track_id=&artist=&from=&to=
// (admin): plays, streams, unique listeners, completion and skip rates,
// premium and free shares of the streams.
func (s *Service) dashboardAudience(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	sc, err := parseScope(q)
	if err != nil {
		return err
	}
	rg, err := parseRange(q, s.now(), MaxDashboardDays)
	if err != nil {
		return err
	}
	a, err := s.Stats.Audience(r.Context(), sc.filter(), rg.from, rg.to)
	if err != nil {
		return err
	}
	free := 0.0
	if a.Streams > 0 {
		free = 1 - a.PremiumShare
	}
	writeJSON(w, http.StatusOK, AudienceDashboard{Scope: sc, Range: rg, Audience: a, FreeShare: free})
	return nil
}

// StreamCounts is GET /v1/stream-counts: every asked track's all-time
// streams (0 for one never streamed).
type StreamCounts struct {
	Counts map[string]int64 `json:"counts"`
}

// streamCounts is GET /v1/stream-counts?track_id=…(repeated, at most 100):
// public, as the cards that show the counts are.
func (s *Service) streamCounts(w http.ResponseWriter, r *http.Request) error {
	ids, err := trackIDs(r.URL.Query(), "track_id", MaxCountTracks)
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		return badParam("track_id", "is required (repeat it for each track, at most %d)", MaxCountTracks)
	}
	counts, err := s.Stats.StreamCounts(r.Context(), ids)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age="+strconv.Itoa(int(StreamCountTTL.Seconds())))
	_ = json.NewEncoder(w).Encode(StreamCounts{Counts: counts})
	return nil
}

// StreamCountTTL is how long a stream count may be shown after it was read
// (the query API's Redis cache keeps it as long).
const StreamCountTTL = time.Minute
