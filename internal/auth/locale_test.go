package auth_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"

	"github.com/overture-music/overture/internal/auth"
	"github.com/overture-music/overture/internal/eventtype"
)

// localeChanges returns the LocaleChanged events of account id in the
// outbox, oldest first, checking each is auth's and keyed by the account.
func (e *env) localeChanges(id string) []eventtype.LocaleChangedData {
	e.t.Helper()
	rows, err := e.pool.Query(context.Background(),
		`SELECT event FROM outbox WHERE event_type = $1 AND event->>'subject' = $2 ORDER BY id`, eventtype.LocaleChanged, id)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	var out []eventtype.LocaleChangedData
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			e.t.Fatal(err)
		}
		var ev struct {
			Source       string
			PartitionKey string
			Data         eventtype.LocaleChangedData
		}
		if err := json.Unmarshal(raw, &ev); err != nil {
			e.t.Fatal(err)
		}
		if ev.Source != auth.Source || ev.PartitionKey != id || ev.Data.UserID != id {
			e.t.Fatalf("LocaleChanged %s", raw)
		}
		out = append(out, ev.Data)
	}
	if err := rows.Err(); err != nil {
		e.t.Fatal(err)
	}
	return out
}

// TestLocaleChangeIsAnnounced: every change of the account's language writes
// one LocaleChanged through the outbox, in its transaction, with the next
// locale version; a request that changes nothing (the same locale, a refused
// one) writes none; concurrent changes get distinct versions, and the highest
// carries the locale the account ended with.
func TestLocaleChangeIsAnnounced(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	id := e.registerConfirmed("announce@example.com", "announce password 1")
	bearer := []string{"Authorization", "Bearer " + e.login("announce@example.com", "announce password 1").str("access_token")}
	patch := func(locale string) {
		t.Helper()
		e.do("PATCH", "/v1/auth/me", map[string]string{"locale": locale}, bearer...).want(t, 200, "")
	}
	if got := e.localeChanges(id); len(got) != 0 {
		t.Fatalf("announced before any change: %+v", got)
	}

	patch("en")
	want := []eventtype.LocaleChangedData{{UserID: id, Locale: "en", Version: 1}}
	if got := e.localeChanges(id); len(got) != 1 || got[0] != want[0] {
		t.Fatalf("after the change: %+v, want %+v", got, want)
	}
	patch("en")
	e.do("PATCH", "/v1/auth/me", map[string]string{"locale": "de"}, bearer...).want(t, 400, "invalid-locale")
	if got := e.localeChanges(id); len(got) != 1 {
		t.Fatalf("a request that changed nothing was announced: %+v", got)
	}
	patch("ru")
	if got := e.localeChanges(id); len(got) != 2 || got[1] != (eventtype.LocaleChangedData{UserID: id, Locale: "ru", Version: 2}) {
		t.Fatalf("after the change back: %+v", got)
	}

	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if r := e.do("PATCH", "/v1/auth/me", map[string]string{"locale": []string{"en", "ru"}[i%2]}, bearer...); r.Status != 200 {
				t.Errorf("concurrent change: %d %s", r.Status, r.Raw)
			}
		})
	}
	wg.Wait()
	got := e.localeChanges(id)
	last := got[len(got)-1]
	for i, d := range got {
		if d.Version != int64(i+1) {
			t.Fatalf("versions are not 1, 2, 3…: %+v", got)
		}
	}
	var locale string
	var version int64
	if err := e.pool.QueryRow(context.Background(), `SELECT locale, locale_version FROM auth_account WHERE id = $1`, id).Scan(&locale, &version); err != nil {
		t.Fatal(err)
	}
	if last.Locale != locale || last.Version != version {
		t.Fatalf("the account is %s at version %d, the newest event says %+v", locale, version, last)
	}
}
