package notification

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/testenv"
)

// The benchmarks compare one email through the function (ledger insert,
// lease, SMTP, mark sent) with the same email sent straight through the same
// SMTP client to the same mailpit: the ratio is what exactly-once costs.
// hack/bench/notification.sh runs them and writes docs/bench/notification.md.

func benchHarness(b *testing.B) (*Notifier, string) {
	b.Helper()
	smtpURL, api := testenv.SMTP(b)
	n := New()
	n.Log = discardLogger()
	cfg := map[string]string{"DATABASE_URL": testenv.Postgres(b), "SMTP_URL": smtpURL, "MAILPIT_URL": api, "PUBLIC_BASE_URL": testBaseURL}
	if err := n.Start(context.Background(), cfg); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = n.Stop(context.Background()) })
	reg := event.New()
	reg.SetID("bench-reg")
	reg.SetSource("/overture/auth")
	reg.SetType(eventtype.UserRegistered)
	_ = reg.SetData(event.ApplicationJSON, eventtype.UserRegisteredData{UserID: "u1", Email: "u1@example.com", Locale: "ru"})
	if _, err := n.Handle(context.Background(), reg); err != nil {
		b.Fatal(err)
	}
	paidPeriod(b, n.pool.Pool, "s-bench", "u1", "monthly", 29900, time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC))
	return n, api
}

func renewed(i int64) event.Event {
	end := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	e := event.New()
	e.SetID(fmt.Sprintf("bench-%d", i))
	e.SetSource("/overture/subscription")
	e.SetType(eventtype.SubscriptionRenewed)
	_ = e.SetData(event.ApplicationJSON, eventtype.SubscriptionData{SubscriptionID: "s-bench", Period: 1, UserID: "u1", Plan: "monthly", PeriodEnd: &end, AmountMinor: 29900, Currency: "RUB"})
	return e
}

// BenchmarkHandleNewEvent: one new event, one email, through Handle.
func BenchmarkHandleNewEvent(b *testing.B) {
	n, _ := benchHarness(b)
	var seq atomic.Int64
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := n.Handle(context.Background(), renewed(seq.Add(1))); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "emails/s")
}

// BenchmarkHandleDuplicate: redelivery of an event whose email went out.
func BenchmarkHandleDuplicate(b *testing.B) {
	n, _ := benchHarness(b)
	e := renewed(0)
	if _, err := n.Handle(context.Background(), e); err != nil {
		b.Fatal(err)
	}
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := n.Handle(context.Background(), e); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
}

// BenchmarkSMTPSendReference: the same rendered email straight through the
// same SMTP client, no ledger.
func BenchmarkSMTPSendReference(b *testing.B) {
	n, _ := benchHarness(b)
	end := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	content, err := Render(KindSubscriptionRenewed, "ru", map[string]any{"Email": "u1@example.com",
		"Plan": formatPlan("ru", "monthly"), "PeriodEnd": formatDate("ru", &end), "Amount": formatMoney("ru", 29900, "RUB")})
	if err != nil {
		b.Fatal(err)
	}
	var seq atomic.Int64
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := MessageID("/bench", fmt.Sprint(seq.Add(1)))
			if err := n.mailer.send(context.Background(), outgoing{to: "u1@example.com", messageID: id, date: time.Now(), content: content, kind: KindSubscriptionRenewed}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "emails/s")
}
