package steering

import (
	"context"
	"errors"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/overture-music/overture/edge"
	"github.com/overture-music/overture/edge/urlsign"
	"github.com/overture-music/overture/internal/problem"
	"github.com/overture-music/overture/internal/token"
)

// grant is what steering signed for one listener and one track: the token
// for the track's media prefix with the catalog's premium paths.
type grant struct {
	media           TrackMedia
	token           string
	tok             urlsign.Token
	expires         time.Time
	listenerPremium bool
}

func errPremium(kind string) *problem.Problem {
	return problem.New(http.StatusForbidden, "premium-required", "rendition "+kind+" needs a premium subscription")
}

// authorize reads the track from the catalog and signs a token for its
// media prefix: only published tracks, with the catalog's premium flag of
// each rendition inside the token and the listener's tier beside it.
func (s *Service) authorize(ctx context.Context, track string) (grant, *problem.Problem) {
	m, err := s.cfg.Catalog.Media(ctx, track)
	if errors.Is(err, ErrTrackUnavailable) {
		return grant{}, problem.New(http.StatusNotFound, "track-unavailable", "no published track "+track)
	}
	if err != nil {
		s.log.ErrorContext(ctx, "steering: catalog read failed", "track", track, "error", err)
		return grant{}, problem.New(http.StatusServiceUnavailable, "catalog-unavailable", "the catalog cannot be read right now; try again")
	}
	// A token for one track must never cover another's objects: the media
	// prefix must lie inside the track's own key space.
	if own := s.cfg.KeyPrefix + track + "/"; !strings.HasPrefix(m.Prefix, own) {
		s.log.ErrorContext(ctx, "steering: renditions outside the track's key space", "track", track, "prefix", m.Prefix, "want", own)
		return grant{}, problem.New(http.StatusConflict, "renditions-misplaced", "the track's renditions are not stored under "+own)
	}
	c, _ := token.FromContext(ctx)
	now := s.cfg.Now()
	g := grant{media: m, expires: now.Add(s.cfg.URLTTL).Truncate(time.Second), listenerPremium: c != nil && c.IsPremium(now)}
	g.tok = urlsign.Token{KeyID: s.cfg.SignWith, Issued: now, Expires: g.expires, Prefix: m.Prefix, PremiumPaths: m.PremiumPaths(),
		ListenerPremium: g.listenerPremium}
	if g.token, err = s.cfg.Keys.Sign(g.tok); err != nil {
		s.log.ErrorContext(ctx, "steering: sign URL", "error", err)
		return grant{}, problem.New(http.StatusInternalServerError, "signing", "could not sign the CDN URL")
	}
	return g, nil
}

// objectKey maps what a client names (a rendition kind, "master", or a
// path below the track's media prefix) to an object key of the track.
func (g grant) objectKey(name string) (string, *problem.Problem) {
	switch name {
	case "", "master":
		if k := g.media.Master(); k != "" {
			return k, nil
		}
		return g.media.Renditions[0].Key, nil
	}
	for _, r := range g.media.Renditions {
		if r.Kind == name {
			if r.Premium && !g.listenerPremium {
				return "", errPremium(r.Kind)
			}
			return r.Key, nil
		}
	}
	if !validRendition(name) {
		return "", problem.BadRequest("rendition must be a rendition kind or a relative path without . or .. segments")
	}
	key := g.media.Prefix + name
	if g.tok.NeedsPremium(key) && !g.listenerPremium {
		return "", errPremium(name)
	}
	return key, nil
}

// url is the URL of key on the POP at popURL with the grant's token.
func (g grant) url(popURL, key string) string {
	return popURL + edge.MediaPrefix + key + "?" + urlsign.Param + "=" + g.token
}

// offer builds up to max signed candidates for track and the object the
// client names (see objectKey).
func (s *Service) offer(r *http.Request, track, rendition string, max int) (Candidates, *problem.Problem) {
	if !validSegment(track) {
		return Candidates{}, problem.BadRequest("track must be a single path segment")
	}
	if rendition != "" && !validRendition(rendition) {
		return Candidates{}, problem.BadRequest("rendition must be a relative path without . or .. segments")
	}
	views, region := s.candidates(r, track, max)
	if len(views) == 0 {
		return Candidates{}, errNoPOP
	}
	g, p := s.authorize(r.Context(), track)
	if p != nil {
		return Candidates{}, p
	}
	key, p := g.objectKey(rendition)
	if p != nil {
		return Candidates{}, p
	}
	for i := range views {
		pop := views[i].BaseURL
		views[i].BaseURL = pop + edge.MediaPrefix + g.media.Prefix
		views[i].URL = g.url(pop, key)
		views[i].ProbeURL = pop + "/health/liveness"
	}
	s.log.DebugContext(r.Context(), "steering: offered", "track", track, "region", region, "first", views[0].POP)
	return Candidates{Track: track, Region: region, Token: g.token, Expires: g.expires, Candidates: views}, nil
}

// candidates picks up to max POPs for the listener (BaseURL holds the
// POP's URL).
func (s *Service) candidates(r *http.Request, track string, max int) ([]Candidate, string) {
	region := s.listenerRegion(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	pops := s.pick(region, track, max)
	views := make([]Candidate, len(pops))
	for i, p := range pops {
		views[i] = Candidate{POP: p.Name, Region: p.Region, RTTMS: s.latency(region, p.Region) + p.srtt, JitterMS: p.jitter,
			NetworkLoad: p.stats.NetworkLoad, BaseURL: p.URL}
	}
	return views, region
}

// Playback is the answer of GET /v1/tracks/{id}/playback: everything a
// client needs to play a track.
type Playback struct {
	TrackID string `json:"track_id"`
	// MasterURL is the master playlist on the chosen POP; the POP lists
	// only the variants this listener may play in it.
	MasterURL  string              `json:"master_url"`
	POP        string              `json:"pop"`
	Region     string              `json:"region"`
	Candidates []PlaybackCandidate `json:"candidates"`
	Renditions []PlaybackRendition `json:"renditions"`
	// LoudnessGainDB is the ReplayGain-style gain to apply (null: unmeasured).
	LoudnessGainDB  *float64          `json:"loudness_gain_db"`
	WaveformURL     string            `json:"waveform_url,omitempty"`
	CoverURLs       map[string]string `json:"cover_urls,omitempty"`
	ListenerPremium bool              `json:"listener_premium"`
	Expires         time.Time         `json:"expires"`
}

// PlaybackCandidate is one POP the client may probe and use instead.
type PlaybackCandidate struct {
	POP       string  `json:"pop"`
	Region    string  `json:"region"`
	MasterURL string  `json:"master_url"`
	BaseURL   string  `json:"base_url"`
	ProbeURL  string  `json:"probe_url"`
	RTTMS     float64 `json:"rtt_ms"`
}

// PlaybackRendition is one rendition of the track.
type PlaybackRendition struct {
	Kind     string `json:"kind"`
	Codec    string `json:"codec,omitempty"`
	Bitrate  int    `json:"bitrate,omitempty"` // bit/s
	Premium  bool   `json:"premium"`
	Playable bool   `json:"playable"`      // this listener may play it
	URL      string `json:"url,omitempty"` // on the chosen POP, when playable
}

// coverSizes are the cover renditions ingestion writes next to the cover
// key (cover/64.jpg, cover/300.jpg, cover/600.jpg).
var coverSizes = []string{"64", "300", "600"}

func (s *Service) servePlayback(w http.ResponseWriter, r *http.Request) {
	track := r.PathValue("id")
	if !validSegment(track) {
		problem.Write(w, r, problem.BadRequest("id must be a single path segment"))
		return
	}
	views, region := s.candidates(r, track, 5)
	if len(views) == 0 {
		problem.Write(w, r, errNoPOP)
		return
	}
	g, p := s.authorize(r.Context(), track)
	if p != nil {
		problem.Write(w, r, p)
		return
	}
	m := g.media
	pop := views[0].BaseURL
	under := func(key string) bool { return key != "" && strings.HasPrefix(key, m.Prefix) }
	res := Playback{TrackID: track, POP: views[0].POP, Region: region, LoudnessGainDB: m.GainDB, ListenerPremium: g.listenerPremium, Expires: g.expires}
	if k := m.Master(); k != "" {
		res.MasterURL = g.url(pop, k)
	}
	for _, v := range views {
		c := PlaybackCandidate{POP: v.POP, Region: v.Region, BaseURL: v.BaseURL + edge.MediaPrefix + m.Prefix, ProbeURL: v.BaseURL + "/health/liveness", RTTMS: v.RTTMS}
		if k := m.Master(); k != "" {
			c.MasterURL = g.url(v.BaseURL, k)
		}
		res.Candidates = append(res.Candidates, c)
	}
	for _, rd := range m.Renditions {
		pr := PlaybackRendition{Kind: rd.Kind, Codec: rd.Codec, Bitrate: rd.Bitrate, Premium: rd.Premium, Playable: !rd.Premium || g.listenerPremium}
		if pr.Playable {
			pr.URL = g.url(pop, rd.Key)
		}
		res.Renditions = append(res.Renditions, pr)
	}
	if under(m.PeaksKey) {
		res.WaveformURL = g.url(pop, m.PeaksKey)
	}
	if under(m.CoverKey) {
		res.CoverURLs = map[string]string{}
		dir, base := path.Split(m.CoverKey)
		for _, size := range coverSizes {
			if base == size+".jpg" || strings.HasSuffix(dir, "cover/") {
				res.CoverURLs[size] = g.url(pop, dir+size+".jpg")
			}
		}
		if len(res.CoverURLs) == 0 {
			res.CoverURLs["original"] = g.url(pop, m.CoverKey)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "private, no-store")
	_ = jsonEncode(w, res)
}
