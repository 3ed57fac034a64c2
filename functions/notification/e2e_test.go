package notification_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/overture-music/overture/functions/deadletter"
	"github.com/overture-music/overture/functions/notification"
	"github.com/overture-music/overture/internal/broker"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/function"
	"github.com/overture-music/overture/internal/function/functiontest"
	"github.com/overture-music/overture/internal/infra/smtptest"
	"github.com/overture-music/overture/internal/lifecycle"
	"github.com/overture-music/overture/internal/manifest"
	"github.com/overture-music/overture/internal/postgres/postgrestest"
	"github.com/overture-music/overture/internal/testenv"
)

// TestThroughTheEmbeddedBroker runs the function behind the embedded broker
// with the repository's own Trigger file: the Triggers route every consumed
// type, and the broker's retries (PT1S exponential) carry an email through a
// subscription event that overtook its registration and through an SMTP
// outage, each arriving exactly once despite duplicate publishing.
func TestThroughTheEmbeddedBroker(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	manifests := t.TempDir()
	for _, f := range []string{"../../brokers/default.yaml", "../../triggers/notification.yaml"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(manifests, filepath.Base(f)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sink := smtptest.Start(t)
	api := sink.APIURL()
	dbURL := testenv.Postgres(t)
	pool := postgrestest.Open(t, dbURL)
	objects, err := manifest.LoadDir(manifests)
	if err != nil {
		t.Fatal(err)
	}
	cfg := map[string]string{"DATABASE_URL": dbURL, "SMTP_URL": sink.URL(), "MAILPIT_URL": api,
		"PUBLIC_BASE_URL": notification.TestBaseURL, "AUTH_RESET_LINK": notification.TestResetLink}
	nf := notification.New()
	nf.Log = slog.New(slog.DiscardHandler)
	handlers := map[string]function.Handler{notification.Name: nf, deadletter.Name: deadletter.New()}
	for name, h := range handlers {
		if err := function.Start(ctx, h, lifecycle.Env{Name: name}, cfg); err != nil {
			t.Fatalf("start %s: %v", name, err)
		}
		t.Cleanup(func() { _ = function.Stop(context.Background(), h) })
	}
	// What auth and the subscription function recorded for the listener.
	u1 := notification.UID("u1")
	notification.SeedAccount(t, pool, u1, "u1@example.com", "ru")
	confirmToken, resetToken := notification.SeedLink(t, pool, "confirm", u1), notification.SeedLink(t, pool, "reset", u1)
	notification.SeedPaidPeriod(t, pool, "s-e2e", u1, "annual", 299000, time.Now().AddDate(1, 0, 0))
	paid := eventtype.SubscriptionData{SubscriptionID: "s-e2e", Period: 1, UserID: u1, Plan: "annual"}
	pub := function.Publisher(functiontest.RunBroker(t, broker.Config{Pool: pool, Objects: objects, Log: slog.New(slog.DiscardHandler)}, handlers))

	n := 0
	mk := func(typ, source string, data any) event.Event {
		n++
		e := event.New()
		e.SetID(fmt.Sprintf("e2e-%d", n))
		e.SetSource(source)
		e.SetType(typ)
		if err := e.SetData(event.ApplicationJSON, data); err != nil {
			t.Fatal(err)
		}
		return e
	}
	publish := func(es ...event.Event) {
		t.Helper()
		if err := pub.Publish(ctx, es...); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
	// waitFor polls mailpit until every Message-ID is there once; then it
	// waits a little longer to see that no copy follows.
	waitFor := func(what string, es ...event.Event) {
		t.Helper()
		var c map[string]int
		testenv.WaitFor(t, 5*time.Minute, what+" to be emailed", func() bool {
			var err error
			c, err = notification.CountByMessageID(ctx, api)
			if err != nil {
				t.Fatal(err)
			}
			done := true
			for _, e := range es {
				id, _, _ := notification.WouldEmail(e)
				if c[id] > 1 {
					t.Fatalf("%s: %s emailed %d times", what, e.Type(), c[id])
				}
				done = done && c[id] == 1
			}
			return done
		})
	}
	// failedAttempts is how many failed deliveries the broker recorded for e
	// (all triggers): its retries are visible in broker_delivery.
	failedAttempts := func(e event.Event) int {
		t.Helper()
		var n int
		if err := pool.QueryRow(ctx, `SELECT coalesce(sum(attempt), 0) FROM broker_delivery
		  WHERE convert_from(event, 'UTF8')::jsonb->>'id' = $1`, e.ID()).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	// 1. A subscription event before its user's registration, each published twice.
	activated := mk(eventtype.SubscriptionActivated, "/overture/subscription", paid)
	publish(activated, activated)
	testenv.WaitFor(t, 5*time.Minute, "the first delivery to fail for want of a contact", func() bool { return failedAttempts(activated) > 0 })
	reg := mk(eventtype.UserRegistered, "/overture/auth", eventtype.UserRegisteredData{
		UserID: u1, Email: "u1@example.com", Locale: "ru", ConfirmURL: "https://overture.test/confirm?token=" + confirmToken})
	publish(reg, reg)
	waitFor("registration overtaken", reg, activated)

	// 2. Every other consumed type is routed.
	var rest []event.Event
	for _, typ := range []string{eventtype.PasswordResetRequested, eventtype.PaymentFailed, eventtype.PaymentRefunded,
		eventtype.SubscriptionRenewed, eventtype.SubscriptionRenewalFailed, eventtype.SubscriptionCanceled, eventtype.SubscriptionExpired} {
		var data any = paid
		source := "/overture/e2e"
		switch typ {
		case eventtype.PasswordResetRequested:
			data = eventtype.PasswordResetRequestedData{UserID: u1, Email: "u1@example.com", Locale: "ru", ResetURL: "https://overture.test/reset?token=" + resetToken}
			source = "/overture/auth"
		case eventtype.PaymentFailed, eventtype.PaymentRefunded:
			data = eventtype.PaymentData{UserID: u1, Purpose: "initial", AmountMinor: 29900, Currency: "RUB"}
		}
		rest = append(rest, mk(typ, source, data))
	}
	publish(rest...)
	waitFor("every type", rest...)

	// 3. An SMTP outage: the broker keeps retrying until mailpit is back.
	sink.Down(t)
	during := mk(eventtype.SubscriptionRenewed, "/overture/subscription", paid)
	publish(during, during)
	testenv.WaitFor(t, 5*time.Minute, "deliveries and retries to fail during the outage", func() bool { return failedAttempts(during) >= 2 })
	sink.Up(t)
	waitFor("after the outage", during)

	// A late duplicate would come from a delivery still pending: wait until
	// the broker holds none (the dead-letter trigger's included).
	testenv.WaitFor(t, 5*time.Minute, "no delivery left in the broker", func() bool {
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM broker_delivery WHERE trigger NOT LIKE '%ping%'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 0
	})
	c, err := notification.CountByMessageID(ctx, api)
	if err != nil {
		t.Fatal(err)
	}
	want := 2 + len(rest) + 1
	total := 0
	for id, k := range c {
		total += k
		if k != 1 {
			t.Errorf("Message-ID %s stored %d times", id, k)
		}
	}
	if total != want {
		t.Fatalf("mailpit holds %d messages, want %d", total, want)
	}
	a, err := notification.AuditDelivery(ctx, pool, api)
	if err != nil {
		t.Fatal(err)
	}
	if !a.ExactlyOnce() || a.Sent != want || a.Stored != want {
		t.Fatalf("audit: %s (%+v), want %d sent exactly once", a, a, want)
	}
}
