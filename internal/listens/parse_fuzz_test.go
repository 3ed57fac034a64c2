package listens

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/overture-music/overture/internal/problem"
)

var fuzzNow = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

// FuzzParse checks that any body is either refused with a 400 problem that
// names at least one field, or yields a submission the store can take: at
// most MaxListens listens, each with an artist and a track, a time within
// the accepted window (none for playing_now), a unique id, and counting
// flags that follow the rules.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{"listen_type":"single","payload":[{"listened_at":1796630000,"track_metadata":{"artist_name":"Кино","track_name":"Группа крови"}}]}`,
		`{"listen_type":"import","payload":[{"listened_at":1796630000,"track_metadata":{"artist_name":"A","track_name":"B","additional_info":{"duration_ms":200000,"played_ms":100000,"end_reason":"skipped"}}},{"listened_at":1796629000,"track_metadata":{"artist_name":"A","track_name":"C","additional_info":{"duration":387}}}]}`,
		`{"listen_type":"playing_now","payload":[{"track_metadata":{"artist_name":"Björk","track_name":"Jóga"}}]}`,
		`{"listen_type":"single","payload":[{"listened_at":"1796630000","track_metadata":{"artist_name":"A","track_name":"B"}}]}`,
		`{"listen_type":"import","payload":[]}`, `{}`, `[]`, `null`, `{"listen_type":"single","payload":[null]}`,
		`{"listen_type":"single","payload":[{"listened_at":1e9,"track_metadata":{"artist_name":"A","track_name":"B","additional_info":{"played_ms":-1}}}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		sub, err := Parse(body, "fuzz-user", fuzzNow, 5*time.Minute)
		if err != nil {
			var p *problem.Problem
			if !errors.As(err, &p) || p.Status != http.StatusBadRequest || p.Type != "/problems/invalid-listens" {
				t.Fatalf("refused with %v, want a 400 invalid-listens problem", err)
			}
			return
		}
		if n := len(sub.Listens); n == 0 || n > MaxListens {
			t.Fatalf("accepted %d listens", n)
		}
		seen := map[string]bool{}
		for i, l := range sub.Listens {
			if strings.TrimSpace(l.ArtistName) == "" || strings.TrimSpace(l.TrackName) == "" {
				t.Fatalf("listen %d accepted without artist or track: %+v", i, l)
			}
			if l.DurationMS < 0 || l.PlayedMS < 0 {
				t.Fatalf("listen %d accepted with a negative length: %+v", i, l)
			}
			if stream, scrobble := Counts(l.DurationMS, l.PlayedMS); stream != l.Stream || scrobble != l.Scrobble {
				t.Fatalf("listen %d flags %v/%v, the rules say %v/%v", i, l.Stream, l.Scrobble, stream, scrobble)
			}
			if sub.ListenType == TypePlayingNow {
				continue
			}
			if l.ListenedAt < minListenedAt || l.ListenedAt > fuzzNow.Add(5*time.Minute).Unix() {
				t.Fatalf("listen %d accepted at %d", i, l.ListenedAt)
			}
			if l.ID == "" || seen[l.ID] {
				t.Fatalf("listen %d has id %q (repeated: %v)", i, l.ID, seen[l.ID])
			}
			seen[l.ID] = true
		}
	})
}

// FuzzDashboardParameters checks that any query string is either refused
// with a 400 problem naming one parameter, or yields a scope and a range
// the store can be asked: from ≤ to, from not after today, within the
// limits, and at most MaxScopeTracks non-empty bounded ids.
func FuzzDashboardParameters(f *testing.F) {
	for _, s := range []string{"", "from=2026-12-01&to=2026-12-07", "track_id=a&track_id=a&artist=X", "from=2026-12-08", "to=2025-01-01",
		"from=2026-02-30", "from=0001-01-01&to=9999-12-31", "artist=", "track_id=", "from=2026-12-01&from=2026-12-02"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		check := func(err error) bool {
			if err == nil {
				return true
			}
			var p *problem.Problem
			if !errors.As(err, &p) || p.Status != http.StatusBadRequest {
				t.Fatalf("refused with %v, want a 400 problem", err)
			}
			b, _ := json.Marshal(p)
			var doc struct {
				Errors map[string]string `json:"errors"`
			}
			if json.Unmarshal(b, &doc) != nil || len(doc.Errors) != 1 {
				t.Fatalf("problem %s names no single field", b)
			}
			for field := range doc.Errors {
				if !strings.HasPrefix(p.Detail, field+": ") {
					t.Fatalf("detail %q does not start with the field %q", p.Detail, field)
				}
			}
			return false
		}
		sc, err := parseScope(q)
		if check(err) {
			if len(sc.TrackIDs) > MaxScopeTracks || len(sc.Artist) > maxArtist || sc.Catalogue != (len(sc.TrackIDs) == 0 && sc.Artist == "") {
				t.Fatalf("accepted scope %+v", sc)
			}
			for _, id := range sc.TrackIDs {
				if id == "" || len(id) > maxTrackID {
					t.Fatalf("accepted track id %q", id)
				}
			}
		}
		for _, max := range []int{MaxDashboardDays, MaxCatalogueStreamDays} {
			rg, err := parseRange(q, fuzzNow, max)
			if !check(err) {
				continue
			}
			days := int(rg.to.Sub(rg.from).Hours() / 24)
			if rg.from.After(fuzzNow) || days < 1 || days > max || rg.from.Format(time.DateOnly) != rg.From || rg.to.AddDate(0, 0, -1).Format(time.DateOnly) != rg.To {
				t.Fatalf("accepted range %+v (%d days, at most %d)", rg, days, max)
			}
		}
	})
}
