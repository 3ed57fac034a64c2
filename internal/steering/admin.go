package steering

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"

	"github.com/overture-music/overture/edge"
	"github.com/overture-music/overture/internal/problem"
	"github.com/overture-music/overture/internal/token"
)

// The admin console's CDN actions: purge a track from every POP and warm it
// on the POP that serves it in each region, answering each POP's outcome.
//
// They call the POPs' admin API directly (as cdn-purge and cdn-warm do),
// rather than publishing the catalog's events again: an admin pressing
// "purge" wants to see, per POP, that it happened, which an event handled
// later by a function cannot answer; a purge and a warm are idempotent, so a
// repeated click is harmless; and no new event type, EventPolicy or trigger
// is needed. Steering already knows the POPs and reads the catalog (the
// renditions a warm pulls), and holds CDN_ADMIN_SECRET for this.

var adminRoutes = []struct{ method, path string }{
	{http.MethodPost, "/v1/admin/cdn/purge"},
	{http.MethodPost, "/v1/admin/cdn/warm"},
}

// POPOutcome is one POP's answer to an admin purge or warm.
type POPOutcome struct {
	POP     string `json:"pop"`
	Region  string `json:"region"`
	Purged  *int   `json:"purged,omitempty"`
	Objects *int   `json:"objects,omitempty"`
	Bytes   *int64 `json:"bytes,omitempty"`
	// Failed maps keys the POP could not fetch from the origin to why.
	Failed map[string]string `json:"failed,omitempty"`
	Error  string            `json:"error,omitempty"`
}

// AdminResult is the answer of POST /v1/admin/cdn/purge and /warm: 200 when
// every POP did it, 207 when some failed (their error is in the list), 502
// when none could.
type AdminResult struct {
	TrackID string       `json:"track_id"`
	POPs    []POPOutcome `json:"pops"`
}

func (s *Service) handleAdmin(mux *http.ServeMux) {
	h := map[string]http.HandlerFunc{"/v1/admin/cdn/purge": s.adminPurge, "/v1/admin/cdn/warm": s.adminWarm}
	for _, rt := range adminRoutes {
		mux.Handle(rt.method+" "+rt.path, s.cfg.Verifier.Middleware(s.log, token.RequireRole(token.RoleAdmin, h[rt.path])))
	}
}

// adminTrack reads {"track_id": "<uuid>"}.
func (s *Service) adminTrack(w http.ResponseWriter, r *http.Request) (string, bool) {
	if s.cfg.AdminSecret == "" {
		problem.Write(w, r, problem.New(http.StatusServiceUnavailable, "cdn-admin-unconfigured",
			"steering has no "+KeyAdminSecret+": it cannot call the POPs' admin API"))
		return "", false
	}
	var in struct {
		TrackID string `json:"track_id"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		problem.Write(w, r, problem.BadRequest(`the body must be {"track_id": "<track id>"}: `+err.Error()))
		return "", false
	}
	if !uuidRe.MatchString(in.TrackID) {
		problem.Write(w, r, problem.BadRequest("track_id "+quote(in.TrackID)+" is not a track id (a UUID)"))
		return "", false
	}
	return in.TrackID, true
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func (s *Service) adminClient() edge.AdminClient {
	return edge.AdminClient{HTTP: s.client, Secret: s.cfg.AdminSecret}
}

// adminPurge is POST /v1/admin/cdn/purge: every POP drops the track's
// objects (its tag and its key space), as cdn-purge does.
func (s *Service) adminPurge(w http.ResponseWriter, r *http.Request) {
	track, ok := s.adminTrack(w, r)
	if !ok {
		return
	}
	req := edge.PurgeRequest{Tags: []string{track}, Prefixes: []string{s.cfg.KeyPrefix + track + "/"}}
	client := s.adminClient()
	res := s.eachPOP(r.Context(), s.cfg.POPs, func(ctx context.Context, p POP, o *POPOutcome) error {
		pr, err := client.Purge(ctx, p.URL, req)
		o.Purged = &pr.Purged
		return err
	})
	s.log.InfoContext(r.Context(), "admin purge", "track_id", track)
	writeAdmin(w, r, track, res)
}

// adminWarm is POST /v1/admin/cdn/warm: the published track's renditions
// are pulled into the POP that serves the track in each region (its
// rendezvous owner among the region's healthy POPs), as cdn-warm does.
func (s *Service) adminWarm(w http.ResponseWriter, r *http.Request) {
	track, ok := s.adminTrack(w, r)
	if !ok {
		return
	}
	m, err := s.cfg.Catalog.Media(r.Context(), track)
	if errors.Is(err, ErrTrackUnavailable) {
		problem.Write(w, r, problem.New(http.StatusNotFound, "track-unavailable", "no published track "+track+" with renditions to warm"))
		return
	}
	if err != nil {
		s.log.ErrorContext(r.Context(), "admin warm: catalog", "error", err)
		problem.Write(w, r, problem.New(http.StatusServiceUnavailable, "catalog-unavailable", "the catalog could not be read; try again"))
		return
	}
	keys := make([]string, 0, len(m.Renditions))
	for _, rd := range m.Renditions {
		keys = append(keys, rd.Key)
	}
	client := s.adminClient()
	res := s.eachPOP(r.Context(), s.owners(track), func(ctx context.Context, p POP, o *POPOutcome) error {
		wr, err := client.Warm(ctx, p.URL, keys)
		o.Objects, o.Bytes, o.Failed = &wr.Objects, &wr.Bytes, wr.Failed
		if err == nil && len(wr.Failed) > 0 {
			err = errors.New("some objects could not be fetched from the origin")
		}
		return err
	})
	s.log.InfoContext(r.Context(), "admin warm", "track_id", track, "keys", len(keys))
	writeAdmin(w, r, track, res)
}

// owners is, per region, the POP steering sends the track's listeners to:
// the rendezvous owner among the healthy POPs, or among all when none is.
func (s *Service) owners(track string) []POP {
	health, _ := s.HealthMap()
	byRegion := map[string][]POP{}
	var regions []string
	for _, p := range health {
		if _, seen := byRegion[p.Region]; !seen {
			regions = append(regions, p.Region)
			byRegion[p.Region] = nil
		}
		if p.Healthy {
			byRegion[p.Region] = append(byRegion[p.Region], p.POP)
		}
	}
	var out []POP
	for _, region := range regions {
		pops := byRegion[region]
		if len(pops) == 0 {
			for _, p := range s.cfg.POPs {
				if p.Region == region {
					pops = append(pops, p)
				}
			}
		}
		out = append(out, Owners(track, pops)[0])
	}
	return out
}

func (s *Service) eachPOP(ctx context.Context, pops []POP, call func(context.Context, POP, *POPOutcome) error) []POPOutcome {
	out := make([]POPOutcome, len(pops))
	var wg sync.WaitGroup
	for i, p := range pops {
		out[i] = POPOutcome{POP: p.Name, Region: p.Region}
		wg.Go(func() {
			if err := call(ctx, p, &out[i]); err != nil {
				out[i].Error = err.Error()
				s.log.WarnContext(ctx, "admin CDN call failed", "pop", p.Name, "error", err)
			}
		})
	}
	wg.Wait()
	return out
}

func writeAdmin(w http.ResponseWriter, r *http.Request, track string, res []POPOutcome) {
	failed := 0
	for _, o := range res {
		if o.Error != "" {
			failed++
		}
	}
	if failed == len(res) && failed > 0 {
		p := problem.New(http.StatusBadGateway, "pops-unreachable", "no POP did it: "+res[0].POP+": "+res[0].Error)
		p.Extra = map[string]any{"pops": res}
		problem.Write(w, r, p)
		return
	}
	status := http.StatusOK
	if failed > 0 {
		status = http.StatusMultiStatus
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = jsonEncode(w, AdminResult{TrackID: track, POPs: res})
}
