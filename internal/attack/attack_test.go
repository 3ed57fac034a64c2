package attack_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/overture-music/overture/edge"
	"github.com/overture-music/overture/edge/edgetest"
	"github.com/overture-music/overture/edge/urlsign"
	"github.com/overture-music/overture/internal/auth"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/platform"
	"github.com/overture-music/overture/internal/steering"
	"github.com/overture-music/overture/internal/telemetry"
	"github.com/overture-music/overture/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// suite is one embedded platform with every function and service, a real
// POP in front of the platform's S3, a listener, a victim address and an
// admin: what an attacker outside the platform can reach.
type suite struct {
	p        *platform.Platform
	db       *pgxpool.Pool
	redis    *redis.Client
	mailAPI  string
	client   *http.Client
	pop      string
	popKey   string // an object the POP holds in its cache
	signKey  []byte
	listener account
	admin    account
}

type account struct{ id, email, password, access string }

func start(t *testing.T) *suite {
	t.Helper()
	const cached = "tracks/00000000-0000-4000-8000-000000000001/aac128/seg1.m4s"
	origin := edgetest.NewOrigin(t, map[string]string{cached: "audio bytes a POP has cached"})
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	keys := urlsign.Keys{"k1": secret}
	pops, _ := origin.StartPOPs(t, keys, steering.POP{Name: "pop-a", Region: "eu-west"})
	smtpURL, mailAPI := testenv.SMTP(t)
	dbURL, redisURL := testenv.Postgres(t), testenv.Redis(t)
	env := map[string]string{
		platform.KeyDatabaseURL: dbURL, platform.KeyRedisURL: redisURL,
		platform.KeyS3Endpoint: origin.Endpoint, platform.KeyS3AccessKey: origin.AccessKey, platform.KeyS3SecretKey: origin.SecretKey,
		platform.KeySMTPURL: smtpURL, platform.KeyMailpitURL: mailAPI,
		// Replication slots are per server: one for each test.
		platform.KeyCDCSlot: slot(t), platform.KeyCDCPublication: slot(t),
		"CDN_POPS": edgetest.POPList(pops), "CDN_ADMIN_SECRET": edgetest.AdminSecret,
		"CDN_SIGNING_KEYS": "k1:" + base64.RawURLEncoding.EncodeToString(secret),
		// No payment moves here: the sandbox's fixed port stays free for others.
		"PAYMENT_SANDBOX_ADDR": "off",
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	p, err := platform.Start(ctx, platform.Options{Env: env, DataDir: t.TempDir(), Log: telemetry.NewLogger(io.Discard, nil),
		ManifestDirs: []string{"../../brokers", "../../triggers"}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Stop(context.Background()) })
	db, err := pgxpool.New(context.Background(), dbURL)
	require.NoError(t, err)
	t.Cleanup(db.Close)
	opt, err := redis.ParseURL(redisURL)
	require.NoError(t, err)
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { _ = rdb.Close() })
	s := &suite{p: p, db: db, redis: rdb, mailAPI: mailAPI, client: &http.Client{Timeout: 20 * time.Second},
		pop: pops[0].URL, popKey: cached, signKey: secret}

	// The listener signs up and confirms through the emailed link, as a person would.
	s.listener = account{email: "listener@example.com", password: "listener password 1"}
	s.call(t, "POST", "/v1/auth/register", "", map[string]string{"email": s.listener.email, "password": s.listener.password}, http.StatusCreated)
	link := s.mailLink(t, s.listener.email, "/v1/auth/confirm?token=")
	resp, err := s.client.Get(link)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	s.login(t, &s.listener)

	s.admin = account{email: "admin@example.com", password: "admin password 1"}
	s.admin.id, _, err = auth.CreateAdmin(context.Background(), db, s.admin.email, s.admin.password, auth.DefaultArgon2)
	require.NoError(t, err)
	s.login(t, &s.admin)

	// The POP caches the object (a second read is a hit).
	for range 2 {
		require.Equal(t, http.StatusOK, s.popGet(t))
	}
	return s
}

func slot(t *testing.T) string {
	return "attack_" + strings.ToLower(strings.NewReplacer("/", "_", "-", "_").Replace(t.Name()))
}

func (s *suite) login(t *testing.T, a *account) {
	t.Helper()
	var lr struct {
		AccessToken string `json:"access_token"`
	}
	require.NoError(t, json.Unmarshal(s.call(t, "POST", "/v1/auth/login", "", map[string]string{"email": a.email, "password": a.password}, http.StatusOK), &lr))
	a.access = lr.AccessToken
	var me struct {
		UserID string `json:"user_id"`
	}
	require.NoError(t, json.Unmarshal(s.call(t, "GET", "/v1/auth/me", a.access, nil, http.StatusOK), &me))
	a.id = me.UserID
	require.NotEmpty(t, a.id)
}

// call sends a JSON request through the gateway and checks the status.
func (s *suite) call(t *testing.T, method, path, bearer string, body any, want int) []byte {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		rd = strings.NewReader(string(b))
	}
	req, err := http.NewRequest(method, s.p.GatewayURL()+path, rd)
	require.NoError(t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := s.client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, want, resp.StatusCode, "%s %s: %s", method, path, out)
	return out
}

// mailLink waits for the mail to addr and returns its link containing marker.
func (s *suite) mailLink(t *testing.T, addr, marker string) string {
	t.Helper()
	var link string
	require.Eventually(t, func() bool {
		for _, m := range s.mails(t) {
			if !strings.EqualFold(m.to, addr) {
				continue
			}
			for _, f := range strings.Fields(m.text) {
				if strings.Contains(f, marker) {
					link = f
					return true
				}
			}
		}
		return false
	}, time.Minute, 100*time.Millisecond, "no mail to %s with %s", addr, marker)
	return link
}

type mail struct{ to, text string }

// mails reads every message mailpit holds, with its text.
func (s *suite) mails(t *testing.T) []mail {
	t.Helper()
	var list struct {
		Messages []struct {
			ID string `json:"ID"`
			To []struct {
				Address string `json:"Address"`
			} `json:"To"`
		} `json:"messages"`
	}
	s.getJSON(t, s.mailAPI+"/api/v1/messages?limit=500", &list)
	var out []mail
	for _, m := range list.Messages {
		var msg struct {
			Text string `json:"Text"`
			HTML string `json:"HTML"`
		}
		s.getJSON(t, s.mailAPI+"/api/v1/message/"+m.ID, &msg)
		for _, to := range m.To {
			out = append(out, mail{to: to.Address, text: msg.Text + " " + msg.HTML})
		}
	}
	return out
}

func (s *suite) getJSON(t *testing.T, url string, into any) {
	t.Helper()
	resp, err := s.client.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, url)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(into))
}

// popGet reads the cached object through the POP with a valid signed URL.
func (s *suite) popGet(t *testing.T) int {
	t.Helper()
	tok, err := urlsign.Sign(s.signKey, urlsign.Token{KeyID: "k1", Expires: time.Now().Add(time.Hour),
		Prefix: "tracks/00000000-0000-4000-8000-000000000001/"})
	require.NoError(t, err)
	resp, err := s.client.Get(s.pop + edge.MediaPrefix + s.popKey + "?" + urlsign.Param + "=" + url.QueryEscape(tok))
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
	require.NoError(t, s.db.QueryRow(ctx, `SELECT coalesce(bool_or(is_premium), false) FROM app_user WHERE user_id::text = $1`, s.listener.id).Scan(&st.Premium))
	require.NoError(t, s.db.QueryRow(ctx, `SELECT count(*) FROM subscription_period`).Scan(&st.Periods))
	require.NoError(t, s.db.QueryRow(ctx, `SELECT count(*) FROM payment`).Scan(&st.Payments))
	require.NoError(t, s.db.QueryRow(ctx, `SELECT count(*) FROM subscription`).Scan(&st.Subscriptions))
	for _, m := range s.mails(t) {
		st.Mails++
		if strings.Contains(m.text, "attacker.example") || strings.EqualFold(m.to, "victim@example.com") {
			st.AttackerMails++
		}
	}
	n, err := s.redis.DBSize(ctx).Result()
	require.NoError(t, err)
	st.RedisKeys = n
	return st
}

// premiumClaim is what the listener's next access token says.
func (s *suite) premiumClaim(t *testing.T) bool {
	t.Helper()
	a := s.listener
	s.login(t, &a)
	parts := strings.Split(a.access, ".")
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
		mk(eventtype.UserUpdated, eventtype.UserUpdatedData{UserID: s.listener.id, IsPremium: true, PremiumUntil: &future, Version: 1 << 40}),
		mk(eventtype.SubscriptionActivated, eventtype.SubscriptionData{SubscriptionID: sub, UserID: s.listener.id, Plan: "annual",
			Status: "active", PeriodStart: &now, PeriodEnd: &future, Period: 1}),
		mk(eventtype.PasswordResetRequested, eventtype.PasswordResetRequestedData{UserID: s.listener.id, Email: "victim@example.com",
			Locale: "en", ResetURL: "https://attacker.example/reset?t=1", ExpiresAt: future}),
		mk(eventtype.TrackRenditionsReplaced, eventtype.TrackRenditionsReplacedData{TrackID: "00000000-0000-4000-8000-000000000001",
			Old: []eventtype.Rendition{{Kind: "aac128", StorageKey: s.popKey}}}),
	}
	for i := range 11 {
		evs = append(evs, mk(eventtype.PaymentCompleted, eventtype.PaymentData{PaymentID: uuid.NewString(), SubscriptionID: sub,
			UserID: s.listener.id, AmountMinor: 0, Currency: "RUB", Purpose: "renewal", Period: i + 2}))
	}
	return evs
}

// post sends e to the broker ingress in structured mode with bearer (none
// when empty) and returns the status.
func (s *suite) post(t *testing.T, e event.Event, bearer string) int {
	t.Helper()
	body, err := json.Marshal(e)
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, s.p.IngressURL(), strings.NewReader(string(body)))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/cloudevents+json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := s.client.Do(req)
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
	require.Eventually(t, func() bool {
		var pending int
		err := s.db.QueryRow(context.Background(), `SELECT count(*) FROM broker_delivery
			WHERE attempt = 0 AND (convert_from(event, 'UTF8')::jsonb->>'id') = ANY($1)`, ids).Scan(&pending)
		return err == nil && pending == 0
	}, 2*time.Minute, 100*time.Millisecond, "the forged events were not delivered")
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
		tok, err := s.p.Token("notification")
		require.NoError(t, err)
		for _, e := range forged {
			require.Equal(t, http.StatusForbidden, s.post(t, e, tok), e.Type())
		}
	})
	t.Run("ThroughTheRelaysIdentity", func(t *testing.T) {
		require.NoError(t, s.p.PublisherAs("cdc").Publish(context.Background(), forged...))
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

// popHits reads the POP's hit counter.
func (s *suite) popHits(t *testing.T) int64 {
	t.Helper()
	var st struct {
		Hits int64 `json:"hits"`
	}
	s.getJSON(t, s.pop+"/stats", &st)
	return st.Hits
}

// TestHTTPFindingsChangeNothing replays the smaller reproductions of issue
// 10 through the gateway.
func TestHTTPFindingsChangeNothing(t *testing.T) {
	s := start(t)
	before := s.state(t)

	t.Run("GenreFloodDoesNotFillRedis", func(t *testing.T) {
		for i := range 200 {
			req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/v1/search?q=a&genre=%s-%d", s.p.GatewayURL(), strings.Repeat("x", 4000), i), nil)
			require.NoError(t, err)
			resp, err := s.client.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, http.StatusBadRequest, resp.StatusCode)
		}
		for i := range 200 {
			resp, err := s.client.Get(fmt.Sprintf("%s/v1/search?q=a&genre=made-up-%d", s.p.GatewayURL(), i))
			require.NoError(t, err)
			resp.Body.Close()
		}
	})
	t.Run("ResetWithForgedTokenIsRefused", func(t *testing.T) {
		s.call(t, "POST", "/v1/auth/password/reset", "", map[string]string{"token": "prt_forged", "password": "new password 123"}, http.StatusBadRequest)
	})
	t.Run("AuthBodiesAreStrict", func(t *testing.T) {
		req, err := http.NewRequest(http.MethodPost, s.p.GatewayURL()+"/v1/auth/login", strings.NewReader(`{"email":"a@b.c","password":"x"}`))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "text/plain")
		resp, err := s.client.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusUnsupportedMediaType, resp.StatusCode)
		s.call(t, "POST", "/v1/auth/login", "", map[string]any{"email": s.listener.email, "password": s.listener.password, "is_admin": true}, http.StatusBadRequest)
	})
	t.Run("CatalogRefusesTraversalAndInvisibleNames", func(t *testing.T) {
		s.call(t, "POST", "/v1/admin/artists", s.admin.access, map[string]string{"name": "Evil\u202egnp.exe"}, http.StatusUnprocessableEntity)
		var artist struct {
			ID string `json:"id"`
		}
		require.NoError(t, json.Unmarshal(s.call(t, "POST", "/v1/admin/artists", s.admin.access, map[string]string{"name": "Кино"}, http.StatusCreated), &artist))
		var track struct {
			ID string `json:"id"`
		}
		require.NoError(t, json.Unmarshal(s.call(t, "POST", "/v1/admin/tracks", s.admin.access,
			map[string]any{"title": "Группа крови", "artist_ids": []string{artist.ID}}, http.StatusCreated), &track))
		for _, key := range []string{"tracks/../../etc/passwd", "tracks/a\nb.m4s", "/abs/key"} {
			s.call(t, "PUT", "/v1/admin/tracks/"+track.ID+"/renditions", s.admin.access,
				map[string]any{"renditions": []map[string]string{{"kind": "aac128", "storage_key": key}}}, http.StatusUnprocessableEntity)
		}
	})
	t.Run("MetricsAreTheOperators", func(t *testing.T) {
		resp, err := s.client.Get(s.p.GatewayURL() + "/metrics")
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	})
	t.Run("SecurityHeaders", func(t *testing.T) {
		resp, err := s.client.Get(s.p.GatewayURL() + "/v1/search?q=a")
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
		require.NotEmpty(t, resp.Header.Get("Content-Security-Policy"))
	})
	t.Run("ContentLengthWithTransferEncodingClosesTheConnection", func(t *testing.T) {
		addr := strings.TrimPrefix(s.p.GatewayURL(), "http://")
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
