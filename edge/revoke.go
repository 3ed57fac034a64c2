package edge

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/overture-music/overture/edge/urlsign"
)

// Why a revocation list: a takedown (unpublish, delete, rights) must stop
// URLs already handed out, within seconds, and a signed URL is valid by
// itself until it expires. Short token lifetimes plus renewal would bound
// the damage only by the lifetime and would make every player renew; instead
// the catalog's events reach every POP's admin API (function cdn-purge), and
// the POP refuses every token of the track issued before the revocation.
// An entry is kept until every token issued before it has expired
// (RevocationKeep, longer than steering's URL lifetime), so the list stays
// as small as the number of takedowns in that window. Tokens issued after
// the revocation (the track published again) are accepted.

// DefaultRevocationKeep is how long a revocation is kept when neither the
// request nor the Config says: longer than steering's default URL lifetime
// (2 h) with a wide margin.
const DefaultRevocationKeep = 24 * time.Hour

// RevokeRequest names the key prefixes (a track's, e.g. tracks/<id>/) whose
// already issued tokens stop working. KeepSeconds (optional) overrides how
// long the revocation is kept: at least the longest URL lifetime.
type RevokeRequest struct {
	Prefixes    []string `json:"prefixes"`
	KeepSeconds int64    `json:"keep_seconds,omitempty"`
}

// RevokeResult reports a revocation: tokens issued before At (unix seconds)
// are refused, and Purged objects under the prefixes were dropped.
type RevokeResult struct {
	Revoked int   `json:"revoked"`
	At      int64 `json:"at"`
	Purged  int   `json:"purged"`
}

// revocation refuses tokens of a prefix issued before at, until until.
type revocation struct {
	At    time.Time `json:"at"`
	Until time.Time `json:"until"`
}

// Revoke makes every token covering an object under one of the prefixes and
// issued before now refuse, and purges the cached objects under them. The
// revocation time is rounded up to the next second (tokens carry issue times
// in seconds), so a token issued in the same second as the revocation is
// refused too; steering hands out a working URL again a second later.
func (s *Server) Revoke(req RevokeRequest) RevokeResult {
	now := s.cfg.Clock.Now()
	at := time.Unix(now.Unix()+1, 0)
	keep := s.cfg.RevocationKeep
	if req.KeepSeconds > 0 {
		keep = time.Duration(req.KeepSeconds) * time.Second
	}
	s.revokeMu.Lock()
	next := map[string]revocation{}
	if cur := s.revocations.Load(); cur != nil {
		for p, r := range *cur {
			if r.Until.After(now) {
				next[p] = r
			}
		}
	}
	n := 0
	for _, p := range req.Prefixes {
		if p == "" {
			continue
		}
		r := revocation{At: at, Until: at.Add(keep)}
		if old, ok := next[p]; ok && old.Until.After(r.Until) {
			r.Until = old.Until
		}
		next[p] = r
		n++
	}
	s.revocations.Store(&next)
	s.saveRevocations(next)
	s.revokeMu.Unlock()
	res := s.Purge(PurgeRequest{Prefixes: req.Prefixes})
	return RevokeResult{Revoked: n, At: at.Unix(), Purged: res.Purged}
}

// revoked reports whether tok, used for key, was issued before a revocation
// of a prefix of key (checked at every "/" of key, and at key itself).
func (s *Server) revoked(tok urlsign.Token, key string) bool {
	m := s.revocations.Load()
	if m == nil || len(*m) == 0 {
		return false
	}
	now := s.cfg.Clock.Now()
	check := func(p string) bool {
		r, ok := (*m)[p]
		return ok && tok.Issued.Before(r.At) && now.Before(r.Until)
	}
	for i := 0; i < len(key); i++ {
		if key[i] == '/' && check(key[:i+1]) {
			return true
		}
	}
	return check(key)
}

func (s *Server) revocationsPath() string {
	if s.cfg.DiskDir == "" {
		return ""
	}
	return filepath.Join(s.cfg.DiskDir, "revocations.json")
}

// saveRevocations keeps the list with the disk tier, so a POP restarted
// within a takedown's window still refuses the revoked tokens.
func (s *Server) saveRevocations(m map[string]revocation) {
	p := s.revocationsPath()
	if p == "" {
		return
	}
	b, err := json.Marshal(m)
	if err == nil {
		err = os.WriteFile(p+".tmp", b, 0o644)
	}
	if err == nil {
		err = os.Rename(p+".tmp", p)
	}
	if err != nil {
		s.log.Error("revocations not saved; a restart would forget them", "error", err)
	}
}

func (s *Server) loadRevocations() {
	m := map[string]revocation{}
	if p := s.revocationsPath(); p != "" {
		if b, err := os.ReadFile(p); err == nil {
			if err := json.Unmarshal(b, &m); err != nil {
				s.log.Error("revocations file unreadable", "path", p, "error", err)
			}
		}
	}
	s.revocations.Store(&m)
}

func (s *Server) serveRevoke(w http.ResponseWriter, r *http.Request) {
	var req RevokeRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	if len(req.Prefixes) == 0 {
		writeProblem(w, r, http.StatusBadRequest, "empty-revoke", "name at least one key prefix")
		return
	}
	for _, p := range req.Prefixes {
		if p == "" || !strings.HasSuffix(p, "/") || !validKey(strings.TrimSuffix(p, "/")) {
			writeProblem(w, r, http.StatusBadRequest, "bad-prefix", "each prefix must be a clean key prefix ending in /, such as tracks/<id>/")
			return
		}
	}
	res := s.Revoke(req)
	s.log.Info("revoke", "prefixes", req.Prefixes, "at", res.At, "purged", res.Purged)
	writeJSON(w, http.StatusOK, res)
}
