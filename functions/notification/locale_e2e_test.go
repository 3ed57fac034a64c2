package notification_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/overture-music/overture/functions/deadletter"
	"github.com/overture-music/overture/functions/notification"
	"github.com/overture-music/overture/internal/auth"
	"github.com/overture-music/overture/internal/broker"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/function"
	"github.com/overture-music/overture/internal/function/functiontest"
	"github.com/overture-music/overture/internal/identity"
	"github.com/overture-music/overture/internal/infra/smtptest"
	"github.com/overture-music/overture/internal/lifecycle"
	"github.com/overture-music/overture/internal/manifest"
	"github.com/overture-music/overture/internal/outbox"
	"github.com/overture-music/overture/internal/postgres"
	"github.com/overture-music/overture/internal/postgres/postgrestest"
	sub "github.com/overture-music/overture/internal/subscription"
	"github.com/overture-music/overture/internal/testenv"
)

// TestLocaleChangeThroughTheBroker is issue 15 end to end on the path the
// platform runs: the auth service registers a listener in English over HTTP,
// the outbox relay (with the relay's identity, checked against
// brokers/eventpolicies.yaml) carries UserRegistered through the embedded
// broker and triggers/notification.yaml to the function, the listener
// confirms with the emailed link, signs in and switches the account to
// Russian (PATCH /v1/auth/me); LocaleChanged takes the same path, and the
// next subscription email, written through the outbox as the subscription
// function writes it, arrives in Russian.
func TestLocaleChangeThroughTheBroker(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	manifests := t.TempDir()
	for _, f := range []string{"../../brokers/default.yaml", "../../brokers/eventpolicies.yaml", "../../triggers/notification.yaml"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(manifests, filepath.Base(f)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	objects, err := manifest.LoadDir(manifests)
	if err != nil {
		t.Fatal(err)
	}
	sink := smtptest.Start(t)
	api := sink.APIURL()
	dbURL := testenv.Postgres(t)
	pool := postgrestest.Open(t, dbURL)
	log := slog.New(slog.DiscardHandler)

	// auth, on the same database, behind its own HTTP server: the links it
	// mails point at it.
	as := auth.New()
	as.Log = log
	as.Argon2 = auth.Argon2Params{Time: 1, Memory: 8 * 1024, Threads: 1, SaltLen: 16, KeyLen: 32}
	srv := httptest.NewServer(as)
	t.Cleanup(srv.Close)
	if err := as.Start(ctx, map[string]string{"DATABASE_URL": dbURL, "REDIS_URL": testenv.Redis(t), "PUBLIC_BASE_URL": srv.URL,
		"AUTH_KEY_ENCRYPTION_KEY": "dGVzdC1vbmx5LWtleS1lbmNyeXB0aW9uLWtleS0zMmI="}); err != nil {
		t.Fatalf("start auth: %v", err)
	}
	t.Cleanup(func() { _ = as.Stop(context.Background()) })

	cfg := map[string]string{"DATABASE_URL": dbURL, "SMTP_URL": sink.URL(), "MAILPIT_URL": api, "PUBLIC_BASE_URL": srv.URL}
	nf := notification.New()
	nf.Log = log
	handlers := map[string]function.Handler{notification.Name: nf, deadletter.Name: deadletter.New()}
	for name, h := range handlers {
		if err := function.Start(ctx, h, lifecycle.Env{Name: name}, cfg); err != nil {
			t.Fatalf("start %s: %v", name, err)
		}
		t.Cleanup(func() { _ = function.Stop(context.Background(), h) })
	}
	b := functiontest.RunBroker(t, broker.Config{Pool: pool, Objects: objects, Log: log}, handlers)
	relayCtx, stopRelay := context.WithCancel(ctx)
	relayDone := make(chan error, 1)
	relay := &outbox.Relay{Pool: pool, Publisher: b.As(identity.Subject(eventtype.Relay)), Log: log, Poll: 100 * time.Millisecond}
	go func() { relayDone <- relay.Run(relayCtx) }()
	t.Cleanup(func() { stopRelay(); <-relayDone })

	call := func(method, path, bearer string, body any, want int) map[string]any {
		t.Helper()
		raw, _ := json.Marshal(body)
		req, err := http.NewRequestWithContext(ctx, method, srv.URL+path, bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(res.Body).Decode(&out)
		if res.StatusCode != want {
			t.Fatalf("%s %s: %d %v, want %d", method, path, res.StatusCode, out, want)
		}
		return out
	}
	// mail waits for the one message to addr whose subject is subject and
	// returns its text part.
	mail := func(addr, subject string) string {
		t.Helper()
		var id string
		testenv.WaitFor(t, 2*time.Minute, "the email "+subject, func() bool {
			ms, err := (&notification.Mailpit{BaseURL: api}).Messages(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range ms {
				if m.Subject == subject && len(m.To) == 1 && m.To[0].Address == addr {
					id = m.ID
				}
			}
			return id != ""
		})
		res, err := http.Get(api + "/api/v1/message/" + id)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var m struct{ Text string }
		if err := json.NewDecoder(res.Body).Decode(&m); err != nil {
			t.Fatal(err)
		}
		return m.Text
	}
	contact := func(userID string) (locale string, version int64) {
		t.Helper()
		err := pool.QueryRow(ctx, `SELECT locale, locale_version FROM notification_contact WHERE user_id = $1`, userID).Scan(&locale, &version)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			t.Fatal(err)
		}
		return locale, version
	}

	const addr, password = "switch@example.com", "switch password 1"
	user := call("POST", "/v1/auth/register", "", map[string]string{"email": addr, "password": password, "locale": "en"}, 201)["user_id"].(string)
	link := regexp.MustCompile(regexp.QuoteMeta(srv.URL) + `/v1/auth/confirm\?token=\S+`).FindString(mail(addr, "Confirm your email for Overture"))
	if link == "" {
		t.Fatal("no confirmation link in the email")
	}
	call("GET", strings.TrimPrefix(link, srv.URL), "", nil, 200)
	at := call("POST", "/v1/auth/login", "", map[string]string{"email": addr, "password": password}, 200)["access_token"].(string)
	if me := call("PATCH", "/v1/auth/me", at, map[string]string{"locale": "ru"}, 200); me["locale"] != "ru" {
		t.Fatalf("PATCH /v1/auth/me answered %v", me)
	}
	testenv.WaitFor(t, 2*time.Minute, "the contact to follow the change", func() bool {
		l, v := contact(user)
		return l == "ru" && v == 1
	})

	// The subscription function's activation, through the outbox.
	end := time.Now().AddDate(0, 1, 0).UTC()
	notification.SeedPaidPeriod(t, pool, "s-switch", user, "monthly", 29900, end)
	activated := event.New()
	activated.SetID(uuid.NewString())
	activated.SetSource(sub.Source)
	activated.SetType(eventtype.SubscriptionActivated)
	activated.SetExtension("partitionkey", user)
	if err := activated.SetData(event.ApplicationJSON, eventtype.SubscriptionData{SubscriptionID: "s-switch", Period: 1, UserID: user, Plan: "monthly"}); err != nil {
		t.Fatal(err)
	}
	if err := postgres.InTx(ctx, pool, func(tx pgx.Tx) error { return outbox.Write(ctx, tx, activated) }); err != nil {
		t.Fatal(err)
	}
	if text := mail(addr, "Подписка Overture Премиум оформлена"); !strings.Contains(text, "Премиум на месяц") || !strings.Contains(text, "299,00\u00a0₽") {
		t.Fatalf("the activation email is not in Russian:\n%s", text)
	}

	// Two quick changes: whatever order they are delivered in, the contact
	// ends with the newer.
	call("PATCH", "/v1/auth/me", at, map[string]string{"locale": "en"}, 200)
	call("PATCH", "/v1/auth/me", at, map[string]string{"locale": "ru"}, 200)
	testenv.WaitFor(t, 2*time.Minute, "the contact to take the newest change", func() bool {
		l, v := contact(user)
		return l == "ru" && v == 3
	})
	a, err := notification.AuditDelivery(ctx, pool, api)
	if err != nil {
		t.Fatal(err)
	}
	if !a.ExactlyOnce() || a.Sent != 2 {
		t.Fatalf("audit: %s, want the confirmation and the activation, each once", a)
	}
}
