package opsapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/overture-music/overture/functions/deadletter"
	"github.com/overture-music/overture/internal/broker"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/function"
	"github.com/overture-music/overture/internal/function/functiontest"
	"github.com/overture-music/overture/internal/opsapi"
	"github.com/overture-music/overture/internal/outbox"
	"github.com/overture-music/overture/internal/testenv"
	"github.com/overture-music/overture/internal/token"
	"github.com/overture-music/overture/internal/token/tokentest"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// The broker of these tests: one subscriber for two types, one of them
// published through the outbox (re-drivable) and one directly (not).
const yaml = `
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: default, namespace: overture}
spec:
  delivery:
    retry: 1
    backoffDelay: PT0.05S
    deadLetterSink: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: dead-letter}}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: fragile, namespace: overture}
spec:
  broker: default
  filters: [{prefix: {type: music.overture.}}]
  subscriber: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: fragile}}
`

type bundle struct {
	srv      *httptest.Server
	pool     *pgxpool.Pool
	broker   *broker.Broker
	fragile  *functiontest.Recorder
	admin    string
	listener string
}

func setup(t *testing.T) *bundle {
	t.Helper()
	ctx := context.Background()
	dl := deadletter.New()
	pool := functiontest.Start(t, dl, nil)
	fragile := &functiontest.Recorder{}
	b := functiontest.RunBroker(t, broker.Config{Pool: pool, Objects: functiontest.Objects(t, yaml), Poll: 50 * time.Millisecond},
		map[string]function.Handler{"fragile": fragile, deadletter.Name: dl})
	auth := tokentest.New(t)
	svc := opsapi.New()
	svc.Pool = pool
	require.NoError(t, svc.Start(ctx, map[string]string{
		"DATABASE_URL": "postgres://unused", "AUTH_JWKS_URL": auth.JWKSURL(), "AUTH_ISSUER": tokentest.Issuer,
	}))
	t.Cleanup(func() { _ = svc.Stop(ctx) })
	srv := httptest.NewServer(svc)
	t.Cleanup(srv.Close)
	return &bundle{srv: srv, pool: pool, broker: b, fragile: fragile,
		admin:    auth.Token(t, "admin-1", tokentest.Options{Roles: []string{token.RoleAdmin}}),
		listener: auth.Token(t, "listener-1", tokentest.Options{})}
}

func (b *bundle) call(t *testing.T, method, path, bearer string, body any) (int, http.Header, []byte) {
	t.Helper()
	var rd io.Reader
	if s, ok := body.(string); ok {
		rd = bytes.NewBufferString(s)
	} else if body != nil {
		buf, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, b.srv.URL+path, rd)
	require.NoError(t, err)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, raw
}

func (b *bundle) json(t *testing.T, method, path string, body any, want int, into any) {
	t.Helper()
	status, _, raw := b.call(t, method, path, b.admin, body)
	require.Equal(t, want, status, "%s %s: %s", method, path, raw)
	if into != nil {
		require.NoError(t, json.Unmarshal(raw, into), string(raw))
	}
}

func testEvent(id, typ string) event.Event {
	e := event.New()
	e.SetID(id)
	e.SetType(typ)
	e.SetSource("/overture/test")
	_ = e.SetData("application/json", map[string]string{"track_id": id})
	return e
}

// deadLetters publishes events the failing subscriber refuses and waits for
// their dead letters.
func (b *bundle) deadLetters(t *testing.T, events ...event.Event) opsapi.Page {
	t.Helper()
	b.fragile.Fail(errors.New("search index is read-only"))
	require.NoError(t, b.broker.Publish(context.Background(), events...))
	var page opsapi.Page
	require.True(t, testenv.Poll(2*time.Minute, func() bool {
		b.json(t, "GET", "/v1/admin/dead-letters", nil, http.StatusOK, &page)
		return len(page.DeadLetters) >= len(events)
	}), "dead letters never arrived")
	b.fragile.Fail(nil)
	return page
}

// relay moves the outbox into the broker once, as cdc/ or the polling relay does.
func (b *bundle) relay(t *testing.T) int {
	t.Helper()
	n, err := (&outbox.Relay{Pool: b.pool, Publisher: b.broker}).Once(context.Background())
	require.NoError(t, err)
	return n
}

// TestRedriveDeliversToTheSubscriberAgain: a dead letter of an outbox type,
// re-driven through the API, reaches its subscriber again, once, without the
// error extensions; a second re-drive says it was already re-driven.
func TestRedriveDeliversToTheSubscriberAgain(t *testing.T) {
	b := setup(t)
	page := b.deadLetters(t, testEvent("t1", eventtype.TrackPublished), testEvent("t2", eventtype.TrackPublished), testEvent("l1", eventtype.ListensSubmitted))
	require.Len(t, page.DeadLetters, 3)
	byEvent := map[string]opsapi.DeadLetter{}
	for _, d := range page.DeadLetters {
		byEvent[d.EventID] = d
	}
	t1, t2, l1 := byEvent["t1"], byEvent["t2"], byEvent["l1"]
	require.Equal(t, "fragile", t1.Subscriber)
	require.Equal(t, "http://fragile.overture.svc.cluster.local", t1.Destination)
	require.Equal(t, "500", t1.ErrorCode)
	require.Contains(t, t1.Error, "search index is read-only")
	require.Equal(t, 1, t1.Times)
	require.True(t, t1.Redrivable)
	require.False(t, l1.Redrivable)
	require.ElementsMatch(t, []string{eventtype.TrackPublished, eventtype.ListensSubmitted}, page.Types)
	require.Equal(t, []string{"fragile"}, page.Subscribers)

	// Filters and paging.
	var filtered opsapi.Page
	b.json(t, "GET", "/v1/admin/dead-letters?type="+eventtype.ListensSubmitted, nil, http.StatusOK, &filtered)
	require.Len(t, filtered.DeadLetters, 1)
	require.Equal(t, "l1", filtered.DeadLetters[0].EventID)
	b.json(t, "GET", "/v1/admin/dead-letters?subscriber=nobody", nil, http.StatusOK, &filtered)
	require.Empty(t, filtered.DeadLetters)
	var first, second opsapi.Page
	b.json(t, "GET", "/v1/admin/dead-letters?subscriber=fragile&limit=2", nil, http.StatusOK, &first)
	require.Len(t, first.DeadLetters, 2)
	require.NotEmpty(t, first.Next)
	b.json(t, "GET", "/v1/admin/dead-letters?limit=2&before="+first.Next, nil, http.StatusOK, &second)
	require.Len(t, second.DeadLetters, 1)
	require.Empty(t, second.Next)

	// One dead letter with its event.
	var detail opsapi.Detail
	b.json(t, "GET", fmt.Sprintf("/v1/admin/dead-letters/%d", t1.ID), nil, http.StatusOK, &detail)
	var ev event.Event
	require.NoError(t, json.Unmarshal(detail.Event, &ev))
	require.Equal(t, "t1", ev.ID())
	require.JSONEq(t, `{"track_id":"t1"}`, string(ev.Data()))

	// Re-drive one: it goes into the outbox, the relay publishes it, the
	// subscriber gets it again.
	var res opsapi.RedriveResult
	b.json(t, "POST", fmt.Sprintf("/v1/admin/dead-letters/%d/redrive", t1.ID), nil, http.StatusOK, &res)
	require.Equal(t, opsapi.StatusRedriven, res.Status)
	require.Equal(t, 1, b.relay(t))
	got := b.fragile.Wait(t, 1, 10*time.Second)
	require.Equal(t, "t1", got[0].ID())
	for _, k := range []string{deadletter.ExtErrorDest, deadletter.ExtErrorCode, deadletter.ExtErrorData} {
		require.NotContains(t, got[0].Extensions(), k)
	}

	// Twice: refused, nothing enqueued.
	status, hdr, raw := b.call(t, "POST", fmt.Sprintf("/v1/admin/dead-letters/%d/redrive", t1.ID), b.admin, nil)
	require.Equal(t, http.StatusConflict, status, string(raw))
	require.Equal(t, "application/problem+json", hdr.Get("Content-Type"))
	require.Contains(t, string(raw), "/problems/already-redriven")
	require.Equal(t, 0, b.relay(t))

	// A selection: each id's outcome; the directly published type is refused.
	var many struct {
		Redriven int                    `json:"redriven"`
		Results  []opsapi.RedriveResult `json:"results"`
	}
	b.json(t, "POST", "/v1/admin/dead-letters/redrive", map[string]any{"ids": []int64{t1.ID, t2.ID, l1.ID, 987654}}, http.StatusOK, &many)
	require.Equal(t, 1, many.Redriven)
	var statuses []string
	for _, r := range many.Results {
		statuses = append(statuses, r.Status)
	}
	require.Equal(t, []string{opsapi.StatusAlreadyRedriven, opsapi.StatusRedriven, opsapi.StatusNotRedrivable, opsapi.StatusNotFound}, statuses)
	require.Contains(t, many.Results[2].Detail, "overture events dlq redrive")
	require.Equal(t, 1, b.relay(t))
	require.Equal(t, "t2", b.fragile.Wait(t, 2, 10*time.Second)[1].ID())

	// Only l1 is still pending; discard it.
	b.json(t, "GET", "/v1/admin/dead-letters", nil, http.StatusOK, &filtered)
	require.Len(t, filtered.DeadLetters, 1)
	require.Equal(t, l1.ID, filtered.DeadLetters[0].ID)
	b.json(t, "DELETE", fmt.Sprintf("/v1/admin/dead-letters/%d", l1.ID), nil, http.StatusNoContent, nil)
	b.json(t, "DELETE", fmt.Sprintf("/v1/admin/dead-letters/%d", l1.ID), nil, http.StatusNotFound, nil)
	b.json(t, "GET", "/v1/admin/dead-letters", nil, http.StatusOK, &filtered)
	require.Empty(t, filtered.DeadLetters)
}

// TestAdminOnlyAndBadInput: no token 401, a listener's 403, and every bad
// parameter a 400 problem naming it; nothing changes.
func TestAdminOnlyAndBadInput(t *testing.T) {
	b := setup(t)
	page := b.deadLetters(t, testEvent("t1", eventtype.TrackPublished))
	id := page.DeadLetters[0].ID
	for _, bearer := range []string{"", b.listener} {
		for _, rt := range [][2]string{
			{"GET", "/v1/admin/dead-letters"}, {"GET", fmt.Sprintf("/v1/admin/dead-letters/%d", id)},
			{"POST", fmt.Sprintf("/v1/admin/dead-letters/%d/redrive", id)}, {"DELETE", fmt.Sprintf("/v1/admin/dead-letters/%d", id)},
			{"POST", "/v1/admin/dead-letters/redrive"},
		} {
			status, hdr, raw := b.call(t, rt[0], rt[1], bearer, `{"ids":[1]}`)
			want := http.StatusForbidden
			if bearer == "" {
				want = http.StatusUnauthorized
			}
			require.Equal(t, want, status, "%s %s as %q: %s", rt[0], rt[1], bearer, raw)
			require.Equal(t, "application/problem+json", hdr.Get("Content-Type"))
		}
	}
	for _, c := range []struct{ method, path, body, want string }{
		{"GET", "/v1/admin/dead-letters?limit=0", "", "limit"},
		{"GET", "/v1/admin/dead-letters?limit=1000", "", "limit"},
		{"GET", "/v1/admin/dead-letters?before=x", "", "before"},
		{"GET", "/v1/admin/dead-letters?type=", "", "type is empty"},
		{"GET", "/v1/admin/dead-letters?type=a&type=b", "", "type: give it once"},
		{"GET", "/v1/admin/dead-letters?trigger=x", "", "unknown parameter trigger"},
		{"GET", "/v1/admin/dead-letters/abc", "", "not a dead-letter id"},
		{"POST", "/v1/admin/dead-letters/-1/redrive", "", "not a dead-letter id"},
		{"POST", "/v1/admin/dead-letters/redrive", `{"ids":[]}`, "ids is empty"},
		{"POST", "/v1/admin/dead-letters/redrive", `{"ids":[0]}`, "0 is not a dead-letter id"},
		{"POST", "/v1/admin/dead-letters/redrive", `{"id":[1]}`, "the body must be"},
		{"POST", "/v1/admin/dead-letters/redrive", `not json`, "the body must be"},
	} {
		var body any
		if c.body != "" {
			body = c.body
		}
		status, hdr, raw := b.call(t, c.method, c.path, b.admin, body)
		require.Equal(t, http.StatusBadRequest, status, "%s %s: %s", c.method, c.path, raw)
		require.Equal(t, "application/problem+json", hdr.Get("Content-Type"))
		require.Contains(t, string(raw), c.want, "%s %s", c.method, c.path)
	}
	b.json(t, "GET", "/v1/admin/dead-letters/424242", nil, http.StatusNotFound, nil)
	b.json(t, "POST", "/v1/admin/dead-letters/424242/redrive", nil, http.StatusNotFound, nil)
	var after opsapi.Page
	b.json(t, "GET", "/v1/admin/dead-letters", nil, http.StatusOK, &after)
	require.Len(t, after.DeadLetters, 1)
	require.Equal(t, 0, b.relay(t))
}
