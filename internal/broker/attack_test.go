package broker

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/overture-music/overture/internal/broker/brokertest"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/function"
	"github.com/overture-music/overture/internal/identity"
	"github.com/overture-music/overture/internal/identity/identitytest"
	"github.com/overture-music/overture/internal/manifest"
	"github.com/overture-music/overture/internal/problem"
	"github.com/overture-music/overture/internal/telemetry"
)

// TestForgedEventsAreRefused replays issue 10's first finding against the
// broker as Overture deploys it — the Broker, Triggers and EventPolicies of
// brokers/ and triggers/ — on a real PostgreSQL: one unauthenticated
// music.overture.user.updated.v1 with is_premium true used to be stored and
// delivered to auth-entitlement, which granted premium. Every forged variant
// is now refused whole, nothing is stored or delivered, and the producer the
// catalog names still delivers.
func TestForgedEventsAreRefused(t *testing.T) {
	t.Parallel()
	objects, err := manifest.LoadDir("../../brokers", "../../triggers")
	if err != nil {
		t.Fatal(err)
	}
	// Every subscriber of the real triggers is a recorder; notification
	// also tries to publish a fact it does not own while handling an event.
	var mu sync.Mutex
	subs := map[string]*recorder{}
	var inHandler error
	handlerDone := make(chan struct{})
	sub := func(name string) *recorder {
		mu.Lock()
		defer mu.Unlock()
		if subs[name] == nil {
			subs[name] = &recorder{}
		}
		return subs[name]
	}
	var once sync.Once
	notification := handlerFunc(func(ctx context.Context, e event.Event) (*event.Event, error) {
		if e.Type() == eventtype.UserRegistered {
			once.Do(func() {
				inHandler = function.PublisherFrom(ctx).Publish(ctx, forgedPremium("from-notification"))
				close(handlerDone)
			})
		}
		return sub("notification").Handle(ctx, e)
	})
	auth := identitytest.New(t)
	pool := newPool(t)
	cfg := Config{
		Pool: pool, Objects: objects, Verifier: auth.Verifier,
		Resolve: func(name string) (function.Handler, bool) {
			if name == "notification" {
				return notification, true
			}
			return sub(name), true
		},
		Lease: 2 * time.Second, Poll: 100 * time.Millisecond,
		Log: telemetry.NewLogger(testWriter{t}, slog.LevelWarn),
	}
	b := runBroker(t, cfg)
	srv := httptest.NewServer(b)
	defer srv.Close()
	url := srv.URL + "/overture/default"
	aud := identity.BrokerAudience("overture", "default")

	stored := func() int {
		var n int
		if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM broker_delivery`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	postForged := func(t *testing.T, token string) *http.Response {
		t.Helper()
		body, _ := json.Marshal(forgedPremium("forged"))
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/cloudevents+json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	other := identitytest.New(t)
	payload, _ := json.Marshal(map[string]any{"iss": identity.EmbeddedIssuer, "sub": identity.Subject("user"), "aud": aud, "exp": time.Now().Add(time.Hour).Unix()})
	algNone := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + base64.RawURLEncoding.EncodeToString(payload) + "."

	for _, tc := range []struct {
		name, token string
	}{
		{"Anonymous", ""},
		{"Expired", auth.TokenFor(t, identity.Subject("user"), aud, -time.Minute)},
		{"WrongAudience", auth.TokenFor(t, identity.Subject("user"), identity.BrokerAudience("overture", "other"), time.Minute)},
		{"WrongSignature", other.Token(t, "user")},
		{"AlgNone", algNone},
		{"NotAJWT", "premium-please"},
	} {
		t.Run(tc.name+"Is401", func(t *testing.T) {
			resp := postForged(t, tc.token)
			if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Content-Type") != problem.ContentType {
				t.Fatalf("status %d %s, want 401 problem+json", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
		})
	}

	t.Run("AnotherWorkloadIs403", func(t *testing.T) {
		resp := postForged(t, auth.Token(t, "notification"))
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(b), identity.Subject("notification")) || !strings.Contains(string(b), eventtype.UserUpdated) {
			t.Fatalf("status %d %s, want 403 naming the subject and the type", resp.StatusCode, b)
		}
		// Even the producer the catalog names: user.updated.v1 travels
		// through the outbox, so only the relay may publish it.
		if resp := postForged(t, auth.Token(t, "user")); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("the user function posting directly: status %d, want 403", resp.StatusCode)
		}
	})

	t.Run("BatchWithOneForgedEventIsRefusedWhole", func(t *testing.T) {
		ok := newEvent("cdc-batch-1", eventtype.CDCTrackChanged)
		ping := newEvent("cdc-batch-2", eventtype.Ping)
		body, _ := json.Marshal([]event.Event{ok, ping})
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/cloudevents-batch+json")
		req.Header.Set("Authorization", "Bearer "+auth.Token(t, eventtype.Relay))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("status %d, want 403", resp.StatusCode)
		}
	})

	t.Run("InProcessPublisherOfAnotherWorkload", func(t *testing.T) {
		err := b.As(identity.Subject("notification")).Publish(context.Background(), forgedPremium("in-process"))
		var denied *DeniedError
		if !errors.As(err, &denied) || denied.Subject != identity.Subject("notification") || denied.Type != eventtype.UserUpdated {
			t.Fatalf("Publish = %v, want a DeniedError for notification and %s", err, eventtype.UserUpdated)
		}
	})

	if n := stored(); n != 0 {
		t.Fatalf("%d delivery rows stored from refused events", n)
	}
	if got := counter(b.m.denied, "overture/default", "unauthenticated"); got != 6 {
		t.Errorf("denied unauthenticated = %v, want 6", got)
	}

	t.Run("LegitimateProducersDeliver", func(t *testing.T) {
		// The relay publishes the outbox's user.updated.v1 over HTTP ...
		pub := function.NewHTTPPublisher(url, nil).WithToken(auth.Issuer.Source(identity.Subject(eventtype.Relay), aud))
		if err := pub.Publish(context.Background(), forgedPremium("relayed")); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "user.updated delivered to auth-entitlement", func() bool { return sub("auth-entitlement").count() == 1 })
		if ids := sub("auth-entitlement").ids(); ids[0] != "relayed" {
			t.Fatalf("auth-entitlement got %v, want only the relayed event", ids)
		}
		// ... and in process a registration that reaches notification,
		// whose handler then tries to forge a premium grant.
		if err := b.As(identity.Subject(eventtype.Relay)).Publish(context.Background(), newEvent("reg-1", eventtype.UserRegistered)); err != nil {
			t.Fatal(err)
		}
		select {
		case <-handlerDone:
		case <-time.After(10 * time.Second):
			t.Fatal("notification never got the registration")
		}
		if !errors.Is(inHandler, ErrForbidden) {
			t.Fatalf("notification publishing %s while handling an event: %v, want forbidden", eventtype.UserUpdated, inHandler)
		}
		eventually(t, 5*time.Second, "all rows settled", func() bool { return stored() == 0 })
		if ids := sub("auth-entitlement").ids(); len(ids) != 1 {
			t.Fatalf("auth-entitlement got %v after the forged in-handler publish", ids)
		}
	})
}

// forgedPremium is the event of the attack: premium for a year, version 999.
func forgedPremium(id string) event.Event {
	e := event.New()
	e.SetID(id)
	e.SetType(eventtype.UserUpdated)
	e.SetSource("/overture/user")
	until := time.Now().AddDate(1, 0, 0)
	_ = e.SetData("application/json", eventtype.UserUpdatedData{UserID: "victim", IsPremium: true, PremiumUntil: &until, Version: 999})
	return e
}

// runBroker runs b from cfg until the test ends.
func runBroker(t *testing.T, cfg Config) *Broker {
	t.Helper()
	b, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return b
}

// TestReplyIsCheckedAgainstTheSubscriber: a subscriber's reply goes back into
// the broker only if the subscriber may send its type; otherwise the delivery
// fails with 403 and, after its retries, the original is dead-lettered —
// nothing of the reply is stored.
func TestReplyIsCheckedAgainstTheSubscriber(t *testing.T) {
	t.Parallel()
	answers, dls := &recorder{}, &recorder{}
	asker := &recorder{fn: func(_ int, e event.Event) (*event.Event, error) {
		typ := "music.overture.answer.v1"
		if e.ID() == "greedy" {
			typ = "music.overture.user.updated.v1"
		}
		r := newEvent("reply-"+e.ID(), typ)
		return &r, nil
	}}
	yaml := brokerYAML +
		trigger("asker", "asker", "  filters: [{exact: {type: music.overture.ask.v1}}]\n  delivery: {retry: 1, backoffDelay: PT0.05S, deadLetterSink: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: dls}}}") +
		trigger("answers", "answers", "  filters: [{prefix: {type: music.overture.}}, {not: {exact: {type: music.overture.ask.v1}}}]") +
		brokertest.AllowYAML("producer", identity.Subject(testProducer), "music.overture.ask.") +
		brokertest.AllowYAML("asker", identity.Subject("asker"), "music.overture.answer.")
	tb := start(t, yaml, map[string]function.Handler{"asker": asker, "answers": answers, "dls": dls})
	pub := tb.As(identity.Subject(testProducer))
	if err := pub.Publish(context.Background(), newEvent("fair", "music.overture.ask.v1"), newEvent("greedy", "music.overture.ask.v1")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the allowed reply delivered and the other original dead-lettered", func() bool {
		return answers.count() == 1 && dls.count() == 1
	})
	if ids := answers.ids(); ids[0] != "reply-fair" {
		t.Fatalf("delivered replies %v, want only reply-fair", ids)
	}
	dl, _ := dls.got()
	if dl[0].ID() != "greedy" || dl[0].Extensions()[ExtErrorCode] != "403" {
		t.Fatalf("dead letter %s with code %v, want greedy with 403", dl[0].ID(), dl[0].Extensions()[ExtErrorCode])
	}
	eventually(t, 5*time.Second, "all rows settled", func() bool { return tb.pending(t) == 0 })
	if got := counter(tb.m.denied, "overture/default", "forbidden"); got != 2 {
		t.Errorf("denied forbidden = %v, want 2 (the reply, refused on each of its 2 attempts)", got)
	}
}
