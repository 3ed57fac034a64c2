package steering

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/overture-music/overture/internal/token"
	"github.com/overture-music/overture/internal/token/tokentest"
)

func adminCall(t *testing.T, srv *httptest.Server, path, bearer, body string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(raw)
}

// TestAdminWarmAndPurge: an admin warms a published track — its owner POP
// in each region fetches it — and purges it from every POP; listeners are
// refused, bad input is a 400 problem, and without CDN_ADMIN_SECRET a 503.
func TestAdminWarmAndPurge(t *testing.T) {
	t.Parallel()
	const id = "5b8f3c1e-2a4d-4e6f-8a0b-1c2d3e4f5a6b"
	f, _, _ := publishedTrack(t, id)
	f.rounds(1)
	srv := httptest.NewServer(f.svc)
	t.Cleanup(srv.Close)
	admin := f.auth.Token(t, "admin-1", tokentest.Options{Roles: []string{token.RoleAdmin}})
	listener := f.auth.Token(t, "listener-1", tokentest.Options{})
	body := `{"track_id":"` + id + `"}`

	// Without the POPs' admin secret steering cannot act.
	if status, ctype, raw := adminCall(t, srv, "/v1/admin/cdn/warm", admin, body); status != http.StatusServiceUnavailable ||
		ctype != "application/problem+json" || !strings.Contains(raw, KeyAdminSecret) {
		t.Fatalf("warm without the secret: %d %s %s", status, ctype, raw)
	}
	f.svc.cfg.AdminSecret = testAdminSecret

	for _, path := range []string{"/v1/admin/cdn/warm", "/v1/admin/cdn/purge"} {
		if status, _, raw := adminCall(t, srv, path, listener, body); status != http.StatusForbidden {
			t.Errorf("%s as a listener: %d %s", path, status, raw)
		}
		if status, _, raw := adminCall(t, srv, path, "", body); status != http.StatusUnauthorized {
			t.Errorf("%s without a token: %d %s", path, status, raw)
		}
		for in, want := range map[string]string{
			`{"track_id":"nope"}`:    `track_id \"nope\" is not a track id`,
			`{"track":"` + id + `"}`: "the body must be",
			`[]`:                     "the body must be",
		} {
			status, ctype, raw := adminCall(t, srv, path, admin, in)
			if status != http.StatusBadRequest || ctype != "application/problem+json" || !strings.Contains(raw, want) {
				t.Errorf("%s %s: %d %s %s; want 400 naming %q", path, in, status, ctype, raw, want)
			}
		}
	}
	if status, _, raw := adminCall(t, srv, "/v1/admin/cdn/warm", admin, `{"track_id":"00000000-0000-4000-8000-000000000000"}`); status != http.StatusNotFound {
		t.Errorf("warm of an unknown track: %d %s", status, raw)
	}

	status, _, raw := adminCall(t, srv, "/v1/admin/cdn/warm", admin, body)
	if status != http.StatusOK {
		t.Fatalf("warm: %d %s", status, raw)
	}
	var warm AdminResult
	if err := json.Unmarshal([]byte(raw), &warm); err != nil {
		t.Fatal(err)
	}
	if len(warm.POPs) != 3 {
		t.Fatalf("warm went to %d POPs, want one per region (3): %s", len(warm.POPs), raw)
	}
	for _, o := range warm.POPs {
		if o.Error != "" || o.Objects == nil || *o.Objects == 0 {
			t.Errorf("warm on %s: %+v", o.POP, o)
		}
		if n := f.pops[o.POP].Snapshot().Objects; n == 0 {
			t.Errorf("%s caches nothing after the warm", o.POP)
		}
	}

	status, _, raw = adminCall(t, srv, "/v1/admin/cdn/purge", admin, body)
	if status != http.StatusOK {
		t.Fatalf("purge: %d %s", status, raw)
	}
	var purge AdminResult
	if err := json.Unmarshal([]byte(raw), &purge); err != nil {
		t.Fatal(err)
	}
	if len(purge.POPs) != len(f.pops) {
		t.Fatalf("purge went to %d POPs, want every one: %s", len(purge.POPs), raw)
	}
	for _, o := range purge.POPs {
		if o.Error != "" || o.Purged == nil || *o.Purged == 0 {
			t.Errorf("purge on %s: %+v", o.POP, o)
		}
		if n := f.pops[o.POP].Snapshot().Objects; n != 0 {
			t.Errorf("%s still caches %d objects after the purge", o.POP, n)
		}
	}

	// Every POP down: 502 with each POP's error.
	for _, p := range f.pops {
		_ = p.Stop(context.Background())
	}
	status, ctype, raw := adminCall(t, srv, "/v1/admin/cdn/purge", admin, body)
	if status != http.StatusBadGateway || ctype != "application/problem+json" || !strings.Contains(raw, "pops-unreachable") {
		t.Errorf("purge with every POP down: %d %s %s", status, ctype, raw)
	}
}
