package attack_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/overture-music/overture/edge"
	"github.com/overture-music/overture/edge/edgetest"
	"github.com/overture-music/overture/edge/urlsign"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/platformtest"
	"github.com/overture-music/overture/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// suite is the whole platform (platformtest) with an object a POP holds in
// its cache, a listener and an admin: what an attacker outside the platform
// can reach.
type suite struct {
	*platformtest.Platform
	popKey   string // an object the POP holds in its cache
	listener platformtest.Account
}

func start(t *testing.T) *suite {
	t.Helper()
	const cached = "tracks/00000000-0000-4000-8000-000000000001/aac128/seg1.m4s"
	p := platformtest.Start(t, platformtest.Options{})
	_, err := p.S3.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(edgetest.Bucket), Key: aws.String(cached),
		Body: strings.NewReader("audio bytes a POP has cached")})
	require.NoError(t, err)
	s := &suite{Platform: p, popKey: cached}
	// The listener signs up and confirms through the emailed link, as a person would.
	s.listener = p.Listener(t, "listener@example.com")

	// The POP caches the object (a second read is a hit).
	for range 2 {
		require.Equal(t, http.StatusOK, s.popGet(t))
	}
	return s
}

// call sends a JSON request through the gateway and checks the status.
func (s *suite) call(t *testing.T, method, path, bearer string, body any, want int) []byte {
	t.Helper()
	return s.Call(t, method, path, bearer, body, want)
}

// popGet reads the cached object through the POP with a valid signed URL.
func (s *suite) popGet(t *testing.T) int {
	t.Helper()
	tok, err := urlsign.Sign(s.SigningKey, urlsign.Token{KeyID: platformtest.SigningKeyID, Expires: time.Now().Add(time.Hour),
		Prefix: "tracks/00000000-0000-4000-8000-000000000001/"})
	require.NoError(t, err)
	resp, err := s.Client.Get(s.POP.URL + edge.MediaPrefix + s.popKey + "?" + urlsign.Param + "=" + url.QueryEscape(tok))
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// state is what an attack must not change: the entitlement, the
// subscription and payment ledgers, the mail sent, the POP's cache and the
// size of Redis.
type state struct {
	Premium       bool
	Periods       int
	Payments      int
	Subscriptions int
	Mails         int
	AttackerMails int
	RedisKeys     int64
	POPHits       int64
}

func (s *suite) state(t *testing.T) state {
	t.Helper()
	ctx := context.Background()
	var st state
	require.NoError(t, s.DB.QueryRow(ctx, `SELECT coalesce(bool_or(is_premium), false) FROM app_user WHERE user_id::text = $1`, s.listener.ID).Scan(&st.Premium))
	require.NoError(t, s.DB.QueryRow(ctx, `SELECT count(*) FROM subscription_period`).Scan(&st.Periods))
	require.NoError(t, s.DB.QueryRow(ctx, `SELECT count(*) FROM payment`).Scan(&st.Payments))
	require.NoError(t, s.DB.QueryRow(ctx, `SELECT count(*) FROM subscription`).Scan(&st.Subscriptions))
	for _, m := range s.Mails(t) {
		st.Mails++
		if strings.Contains(m.Text, "attacker.example") || strings.EqualFold(m.To, "victim@example.com") {
			st.AttackerMails++
		}
	}
	n, err := s.Redis.DBSize(ctx).Result()
	require.NoError(t, err)
	st.RedisKeys = n
	return st
}

// premiumClaim is what the listener's next access token says.
func (s *suite) premiumClaim(t *testing.T) bool {
	t.Helper()
	a := s.listener
	s.Login(t, &a)
	parts := strings.Split(a.Access, ".")
	require.Len(t, parts, 3)
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	var claims map[string]any
	require.NoError(t, json.Unmarshal(raw, &claims))
	premium, _ := claims["premium"].(bool)
	return premium
}

// forged are the facts of issue 10's reproductions: premium for a free
// account, ten years of premium without a subscription, eleven zero-amount
// payments, a password-reset mail with the attacker's link, a purge of
// every POP.
func (s *suite) forged() []event.Event {
	future := time.Now().AddDate(10, 0, 0)
	now := time.Now()
	sub := uuid.NewString()
	mk := func(typ string, data any) event.Event {
		e := event.New()
		e.SetID(uuid.NewString())
		e.SetSource("/overture/attacker")
		e.SetType(typ)
		e.SetTime(now)
		_ = e.SetData("application/json", data)
		return e
	}
	evs := []event.Event{
		mk(eventtype.UserUpdated, eventtype.UserUpdatedData{UserID: s.listener.ID, IsPremium: true, PremiumUntil: &future, Version: 1 << 40}),
		mk(eventtype.SubscriptionActivated, eventtype.SubscriptionData{SubscriptionID: sub, UserID: s.listener.ID, Plan: "annual",
			Status: "active", PeriodStart: &now, PeriodEnd: &future, Period: 1}),
		mk(eventtype.PasswordResetRequested, eventtype.PasswordResetRequestedData{UserID: s.listener.ID, Email: "victim@example.com",
			Locale: "en", ResetURL: "https://attacker.example/reset?t=1", ExpiresAt: future}),
		mk(eventtype.TrackRenditionsReplaced, eventtype.TrackRenditionsReplacedData{TrackID: "00000000-0000-4000-8000-000000000001",
			Old: []eventtype.Rendition{{Kind: "aac128", StorageKey: s.popKey}}}),
	}
	for i := range 11 {
		evs = append(evs, mk(eventtype.PaymentCompleted, eventtype.PaymentData{PaymentID: uuid.NewString(), SubscriptionID: sub,
			UserID: s.listener.ID, AmountMinor: 0, Currency: "RUB", Purpose: "renewal", Period: i + 2}))
	}
	return evs
}

// post sends e to the broker ingress in structured mode with bearer (none
// when empty) and returns the status.
func (s *suite) post(t *testing.T, e event.Event, bearer string) int {
	t.Helper()
	body, err := json.Marshal(e)
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, s.IngressURL(), strings.NewReader(string(body)))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/cloudevents+json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := s.Client.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// settled waits until the broker has made at least one delivery attempt of
// each of events to every trigger that wanted it.
func (s *suite) settled(t *testing.T, events []event.Event) {
	t.Helper()
	ids := make([]string, len(events))
	for i, e := range events {
		ids[i] = e.ID()
	}
	testenv.WaitFor(t, 2*time.Minute, "the forged events to be delivered", func() bool {
		var pending int
		err := s.DB.QueryRow(context.Background(), `SELECT count(*) FROM broker_delivery
			WHERE attempt = 0 AND (convert_from(event, 'UTF8')::jsonb->>'id') = ANY($1)`, ids).Scan(&pending)
		return err == nil && pending == 0
	})
}

// TestForgedFactsChangeNothing replays issue 10's event-path reproductions
// against the whole platform: anonymous (401), with another workload's
// identity (403), and — defence in depth, as if the broker's policy had a
// gap — published with the identity of the relay that may carry every
// outbox fact: then each consumer must refuse them against its own source
// of truth. Nothing may change in PostgreSQL, Redis, mail or the POP.
func TestForgedFactsChangeNothing(t *testing.T) {
	s := start(t)
	before := s.state(t)
	require.False(t, before.Premium)
	require.False(t, s.premiumClaim(t))
	hitsBefore := s.popHits(t)

	forged := s.forged()
	t.Run("Anonymous", func(t *testing.T) {
		for _, e := range forged {
			require.Equal(t, http.StatusUnauthorized, s.post(t, e, ""), e.Type())
		}
	})
	t.Run("AnotherWorkload", func(t *testing.T) {
		tok, err := s.Token("notification")
		require.NoError(t, err)
		for _, e := range forged {
			require.Equal(t, http.StatusForbidden, s.post(t, e, tok), e.Type())
		}
	})
	t.Run("ThroughTheRelaysIdentity", func(t *testing.T) {
		require.NoError(t, s.PublisherAs("cdc").Publish(context.Background(), forged...))
		s.settled(t, forged)
	})

	after := s.state(t)
	// Redis holds the sessions premiumClaim's logins open; the entitlement
	// itself is asserted through the token.
	before.RedisKeys, after.RedisKeys = 0, 0
	require.Equal(t, before, after, "a forged fact changed the platform")
	require.False(t, s.premiumClaim(t), "the listener's token claims premium")
	require.Equal(t, http.StatusOK, s.popGet(t))
	require.Greater(t, s.popHits(t), hitsBefore, "the POP's cached object was purged by a forged event")
}

// listenFact is a ListensSubmitted event, shaped as the listens service
// publishes it, saying the listener played track now.
func (s *suite) listenFact(track string) event.Event {
	l := eventtype.Listen{ID: uuid.NewString(), ListenedAt: time.Now().Add(-time.Minute).Unix(), ArtistName: "Attacker",
		TrackName: track, DurationMS: 200_000, PlayedMS: 200_000, Stream: true, Scrobble: true, Client: "overture"}
	e := event.New()
	e.SetID(uuid.NewString())
	e.SetSource("/overture/listens")
	e.SetType(eventtype.ListensSubmitted)
	e.SetSubject(s.listener.ID)
	e.SetTime(time.Now())
	_ = e.SetData("application/json", eventtype.ListensData{BatchID: e.ID(), UserID: s.listener.ID, ListenType: "single",
		Listens: []eventtype.Listen{l}})
	return e
}

// listened is the track names of the listener's statistics at path (a
// GET /v1/me/… read API answering {"listens": [...]}).
func (s *suite) listened(t *testing.T, path string) []string {
	t.Helper()
	var page struct {
		Listens []struct {
			TrackName string `json:"track_name"`
		} `json:"listens"`
	}
	s.CallJSON(t, "GET", path, s.listener.Access, nil, http.StatusOK, &page)
	names := make([]string, 0, len(page.Listens))
	for _, l := range page.Listens {
		names = append(names, l.TrackName)
	}
	return names
}

// TestForgedListensAreNotCounted: only the listens service may say that a
// listener played something (its EventPolicy is the one allowing
// ListensSubmitted). A listen fact posted to the broker ingress anonymously
// (401) or with any other workload's identity (403) — the relay that may
// carry most facts, another producer, the listens' own consumers — is
// refused, and the listener's statistics show nothing of it. The control:
// the same fact, posted with the listens service's identity, is counted,
// so the refusal is what kept the forged one out, not its shape or an idle
// stats writer.
func TestForgedListensAreNotCounted(t *testing.T) {
	s := start(t)
	const forgedTrack, controlTrack = "Forged listen", "Listen from the listens service"
	forged := s.listenFact(forgedTrack)

	t.Run("Anonymous", func(t *testing.T) {
		require.Equal(t, http.StatusUnauthorized, s.post(t, forged, ""))
	})
	t.Run("AnotherWorkload", func(t *testing.T) {
		for _, workload := range []string{"cdc", "ingest", "stats-writer", "recommend"} {
			tok, err := s.Token(workload)
			require.NoError(t, err)
			require.Equal(t, http.StatusForbidden, s.post(t, forged, tok), workload)
		}
	})

	tok, err := s.Token("listens")
	require.NoError(t, err)
	control := s.listenFact(controlTrack)
	require.Equal(t, http.StatusAccepted, s.post(t, control, tok))
	testenv.WaitFor(t, 2*time.Minute, "the listens service's fact to be counted", func() bool {
		return slices.Contains(s.listened(t, "/v1/me/recent"), controlTrack)
	})
	require.Equal(t, []string{controlTrack}, s.listened(t, "/v1/me/listens"), "the listener's history")
	require.Equal(t, []string{controlTrack}, s.listened(t, "/v1/me/recent"), "the listener's recent plays")
}

// popHits reads the POP's hit counter.
func (s *suite) popHits(t *testing.T) int64 {
	t.Helper()
	var st struct {
		Hits int64 `json:"hits"`
	}
	s.GetJSON(t, s.POP.URL+"/stats", &st)
	return st.Hits
}

// TestHTTPFindingsChangeNothing replays the smaller reproductions of issue
// 10 through the gateway.
func TestHTTPFindingsChangeNothing(t *testing.T) {
	s := start(t)
	before := s.state(t)

	t.Run("GenreFloodDoesNotFillRedis", func(t *testing.T) {
		for i := range 200 {
			req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/v1/search?q=a&genre=%s-%d", s.GatewayURL(), strings.Repeat("x", 4000), i), nil)
			require.NoError(t, err)
			resp, err := s.Client.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, http.StatusBadRequest, resp.StatusCode)
		}
		for i := range 200 {
			resp, err := s.Client.Get(fmt.Sprintf("%s/v1/search?q=a&genre=made-up-%d", s.GatewayURL(), i))
			require.NoError(t, err)
			resp.Body.Close()
		}
	})
	t.Run("ResetWithForgedTokenIsRefused", func(t *testing.T) {
		s.call(t, "POST", "/v1/auth/password/reset", "", map[string]string{"token": "prt_forged", "password": "new password 123"}, http.StatusBadRequest)
	})
	t.Run("AuthBodiesAreStrict", func(t *testing.T) {
		req, err := http.NewRequest(http.MethodPost, s.GatewayURL()+"/v1/auth/login", strings.NewReader(`{"email":"a@b.c","password":"x"}`))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "text/plain")
		resp, err := s.Client.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusUnsupportedMediaType, resp.StatusCode)
		s.call(t, "POST", "/v1/auth/login", "", map[string]any{"email": s.listener.Email, "password": s.listener.Password, "is_admin": true}, http.StatusBadRequest)
	})
	t.Run("CatalogRefusesTraversalAndInvisibleNames", func(t *testing.T) {
		s.call(t, "POST", "/v1/admin/artists", s.Admin.Access, map[string]string{"name": "Evil\u202egnp.exe"}, http.StatusUnprocessableEntity)
		var artist struct {
			ID string `json:"id"`
		}
		require.NoError(t, json.Unmarshal(s.call(t, "POST", "/v1/admin/artists", s.Admin.Access, map[string]string{"name": "Кино"}, http.StatusCreated), &artist))
		var track struct {
			ID string `json:"id"`
		}
		require.NoError(t, json.Unmarshal(s.call(t, "POST", "/v1/admin/tracks", s.Admin.Access,
			map[string]any{"title": "Группа крови", "artist_ids": []string{artist.ID}}, http.StatusCreated), &track))
		for _, key := range []string{"tracks/../../etc/passwd", "tracks/a\nb.m4s", "/abs/key"} {
			s.call(t, "PUT", "/v1/admin/tracks/"+track.ID+"/renditions", s.Admin.Access,
				map[string]any{"renditions": []map[string]string{{"kind": "aac128", "storage_key": key}}}, http.StatusUnprocessableEntity)
		}
	})
	t.Run("MetricsAreTheOperators", func(t *testing.T) {
		resp, err := s.Client.Get(s.GatewayURL() + "/metrics")
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	})
	t.Run("SecurityHeaders", func(t *testing.T) {
		resp, err := s.Client.Get(s.GatewayURL() + "/v1/search?q=a")
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
		require.NotEmpty(t, resp.Header.Get("Content-Security-Policy"))
	})
	t.Run("ContentLengthWithTransferEncodingClosesTheConnection", func(t *testing.T) {
		addr := strings.TrimPrefix(s.GatewayURL(), "http://")
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		require.NoError(t, err)
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		_, err = io.WriteString(c, "POST /v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
		require.NoError(t, err)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusBadRequest, resp.StatusCode)
		_, err = c.Read(make([]byte, 1))
		require.Error(t, err, "the connection stays open after a smuggling attempt")
	})

	after := s.state(t)
	before.RedisKeys, after.RedisKeys = 0, redisGrowth(t, before.RedisKeys, after.RedisKeys)
	require.Equal(t, before, after, "an HTTP finding changed the platform")
}

// redisGrowth allows the handful of keys the suite's own requests write
// (rate-limit windows of its logins and searches) and fails on a flood.
func redisGrowth(t *testing.T, before, after int64) int64 {
	t.Helper()
	require.Less(t, after-before, int64(50), "Redis grew by %d keys: the made-up genres were cached", after-before)
	return 0
}
