package notification

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/infra"
	"github.com/overture-music/overture/internal/infra/smtptest"
	"github.com/overture-music/overture/internal/telemetry"
	"github.com/overture-music/overture/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// syncBuffer collects log output written from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type harness struct {
	n    *Notifier
	api  string
	logs *syncBuffer
	db   *pgxpool.Pool
}

// start runs a notification function on a fresh database against the SMTP
// sink at smtpURL. checkAPI, when set, is the mailpit API used for "query
// before retry".
func start(t *testing.T, smtpURL, checkAPI string) *harness {
	t.Helper()
	ctx := context.Background()
	logs := &syncBuffer{}
	n := New()
	n.Log = telemetry.NewLogger(logs, slog.LevelDebug)
	n.lease = 300 * time.Millisecond
	cfg := map[string]string{"DATABASE_URL": testenv.Postgres(t), "SMTP_URL": smtpURL, "PUBLIC_BASE_URL": testBaseURL, "AUTH_RESET_LINK": testResetLink}
	if checkAPI != "" {
		cfg["MAILPIT_URL"] = checkAPI
	}
	if err := n.Start(ctx, cfg); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { _ = n.Stop(context.Background()) })
	return &harness{n: n, api: checkAPI, logs: logs, db: n.pool.Pool}
}

var seq atomic.Int64

func newEvent(t *testing.T, typ, source string, data any) event.Event {
	t.Helper()
	e := event.New()
	e.SetID(fmt.Sprintf("evt-%s-%d", t.Name(), seq.Add(1)))
	e.SetSource(source)
	e.SetType(typ)
	e.SetTime(time.Now())
	if err := e.SetData(event.ApplicationJSON, data); err != nil {
		t.Fatal(err)
	}
	return e
}

func registered(t *testing.T, userID, addr, locale, confirmURL string) event.Event {
	return newEvent(t, eventtype.UserRegistered, "/overture/auth", eventtype.UserRegisteredData{
		UserID: userID, Email: addr, Locale: locale, ConfirmURL: confirmURL,
		ExpiresAt: time.Date(2026, 11, 26, 20, 0, 0, 0, time.UTC),
	})
}

func (h *harness) handle(t *testing.T, e event.Event) error {
	t.Helper()
	_, err := h.n.Handle(context.Background(), e)
	return err
}

// redeliver hands e over as the broker does: again, after a pause, while
// another delivery holds its send lease (ErrInProgress).
func (h *harness) redeliver(t *testing.T, e event.Event) error {
	t.Helper()
	for {
		err := h.handle(t, e)
		if !errors.Is(err, ErrInProgress) {
			return err
		}
		// The broker's redelivery pace (not a wait for a condition).
		time.Sleep(20 * time.Millisecond)
	}
}

// afterLease redelivers e until the send lease of the crashed delivery has
// run out (the redelivery is accepted), failing on any other error.
func (h *harness) afterLease(t *testing.T, e event.Event) {
	t.Helper()
	if err := h.redeliver(t, e); err != nil {
		t.Fatalf("redelivery after the lease: %v", err)
	}
}

func (h *harness) mustHandle(t *testing.T, e event.Event) {
	t.Helper()
	if err := h.handle(t, e); err != nil {
		t.Fatalf("handle %s: %v", e.Type(), err)
	}
}

// mailpitMessage is mailpit's GET /api/v1/message/{ID}.
type mailpitFull struct {
	MessageID string
	Subject   string
	To        []struct{ Address string }
	From      struct{ Address, Name string }
	Text      string
	HTML      string
}

func fetchMessage(t *testing.T, api, id string) mailpitFull {
	t.Helper()
	resp, err := http.Get(api + "/api/v1/message/" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m mailpitFull
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

// only returns the one message with Message-ID msgID, failing unless there is
// exactly one.
func only(t *testing.T, api, msgID string) mailpitFull {
	t.Helper()
	ms, err := (&Mailpit{BaseURL: api}).SearchMessageID(context.Background(), msgID)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 {
		t.Fatalf("mailpit holds %d messages with Message-ID %s, want 1", len(ms), msgID)
	}
	return fetchMessage(t, api, ms[0].ID)
}

func counts(t *testing.T, api string) map[string]int {
	t.Helper()
	c, err := CountByMessageID(context.Background(), api)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func total(c map[string]int) int {
	n := 0
	for _, v := range c {
		n += v
	}
	return n
}

func TestEveryKindEmailsItsUserInTheirLanguage(t *testing.T) {
	t.Parallel()
	smtpURL, api := testenv.SMTP(t)
	h := start(t, smtpURL, api)
	end := time.Date(2026, 12, 25, 0, 0, 0, 0, time.UTC)
	retry := time.Date(2026, 11, 28, 9, 30, 0, 0, time.UTC)

	type want struct {
		subject string
		body    []string // in the text and the HTML part
	}
	subjects := map[string]map[Kind]want{
		"en": {
			KindConfirmEmail:              {"Confirm your email for Overture", []string{"https://overture.test/v1/auth/confirm?token=", "26 November 2099, 20:00 UTC"}},
			KindPasswordReset:             {"Reset your Overture password", []string{"https://overture.test/reset?token="}},
			KindSubscriptionActivated:     {"Your Overture Premium is active", []string{"Premium, monthly", "RUB 299.00", "25 December 2026"}},
			KindPaymentFailed:             {"Your Overture payment did not go through", []string{"RUB 299.00", "card_declined"}},
			KindPaymentRefunded:           {"Your Overture payment was refunded", []string{"RUB 2,990.00"}},
			KindSubscriptionRenewed:       {"Your Overture Premium was renewed", []string{"25 December 2026"}},
			KindSubscriptionRenewalFailed: {"We could not renew your Overture Premium", []string{"28 November 2026, 09:30 UTC"}},
			KindSubscriptionCanceled:      {"Your Overture Premium will not renew", []string{"25 December 2026"}},
			KindSubscriptionExpired:       {"Your Overture Premium has ended", []string{"free plan"}},
		},
		"ru": {
			KindConfirmEmail:              {"Подтвердите адрес почты для Overture", []string{"https://overture.test/v1/auth/confirm?token=", "26 ноября 2099 г., 20:00 UTC"}},
			KindPasswordReset:             {"Сброс пароля Overture", []string{"https://overture.test/reset?token="}},
			KindSubscriptionActivated:     {"Подписка Overture Премиум оформлена", []string{"Премиум на месяц", "299,00\u00a0₽", "25 декабря 2026 г."}},
			KindPaymentFailed:             {"Не удалось оплатить Overture Премиум", []string{"299,00\u00a0₽", "card_declined"}},
			KindPaymentRefunded:           {"Возврат платежа за Overture Премиум", []string{"2\u00a0990,00\u00a0₽"}},
			KindSubscriptionRenewed:       {"Подписка Overture Премиум продлена", []string{"25 декабря 2026 г."}},
			KindSubscriptionRenewalFailed: {"Не удалось продлить Overture Премиум", []string{"28 ноября 2026 г., 09:30 UTC"}},
			KindSubscriptionCanceled:      {"Подписка Overture Премиум отменена", []string{"25 декабря 2026 г."}},
			KindSubscriptionExpired:       {"Overture Премиум закончился", []string{"бесплатный тариф"}},
		},
	}

	for _, locale := range []string{"en", "ru"} {
		user := uid("user-" + locale)
		addr := "listener-" + locale + "@example.com"
		sub := func(extra func(*eventtype.SubscriptionData)) eventtype.SubscriptionData {
			d := eventtype.SubscriptionData{SubscriptionID: "sub-" + locale, UserID: user, Plan: "monthly", Status: "active",
				PeriodEnd: &end, AmountMinor: 29900, Currency: "RUB", Period: 1}
			if extra != nil {
				extra(&d)
			}
			return d
		}
		// The auth locale arrives as the client sent it.
		reg := h.registered(t, user, addr, map[string]string{"en": "en-GB", "ru": "ru"}[locale],
			"https://overture.test/v1/auth/confirm?token=CONFIRM-"+locale)
		paidPeriod(t, h.db, "sub-"+locale, user, "monthly", 29900, end)
		reset := h.reset(t, user, addr, locale)
		// The links carry the secrets auth stored, behind this function's base URL.
		for kind, e := range map[Kind]event.Event{KindConfirmEmail: reg, KindPasswordReset: reset} {
			w := subjects[locale][kind]
			w.body = append([]string{w.body[0] + eventToken(t, e)}, w.body[1:]...)
			subjects[locale][kind] = w
		}
		events := map[Kind]event.Event{
			KindConfirmEmail:          reg,
			KindPasswordReset:         reset,
			KindSubscriptionActivated: newEvent(t, eventtype.SubscriptionActivated, "/overture/subscription", sub(nil)),
			KindPaymentFailed: newEvent(t, eventtype.PaymentFailed, "/overture/payment", eventtype.PaymentData{
				PaymentID: "pay-1", SubscriptionID: "sub-" + locale, UserID: user, AmountMinor: 29900, Currency: "RUB",
				Purpose: "initial", Period: 1, Reason: "card_declined"}),
			KindPaymentRefunded: newEvent(t, eventtype.PaymentRefunded, "/overture/payment", eventtype.PaymentData{
				PaymentID: "pay-2", SubscriptionID: "sub-" + locale, UserID: user, AmountMinor: 299000, Currency: "RUB",
				Purpose: "initial", Period: 1}),
			KindSubscriptionRenewed: newEvent(t, eventtype.SubscriptionRenewed, "/overture/subscription", sub(nil)),
			KindSubscriptionRenewalFailed: newEvent(t, eventtype.SubscriptionRenewalFailed, "/overture/subscription",
				sub(func(d *eventtype.SubscriptionData) {
					d.Status, d.NextRetryAt, d.Reason = "past_due", &retry, "insufficient_funds"
				})),
			KindSubscriptionCanceled: newEvent(t, eventtype.SubscriptionCanceled, "/overture/subscription", sub(nil)),
			KindSubscriptionExpired:  newEvent(t, eventtype.SubscriptionExpired, "/overture/subscription", sub(nil)),
		}
		h.mustHandle(t, reg) // first: the contact every other email needs
		for kind, e := range events {
			h.mustHandle(t, e)
			msgID, ok, err := WouldEmail(e)
			if err != nil || !ok || msgID != MessageID(e.Source(), e.ID()) {
				t.Fatalf("WouldEmail(%s) = %q, %v, %v", kind, msgID, ok, err)
			}
			m := only(t, api, msgID)
			w := subjects[locale][kind]
			if m.Subject != w.subject {
				t.Errorf("%s/%s: subject %q, want %q", locale, kind, m.Subject, w.subject)
			}
			if len(m.To) != 1 || m.To[0].Address != addr {
				t.Errorf("%s/%s: to %+v, want %s", locale, kind, m.To, addr)
			}
			if m.From.Address != "no-reply@overture.local" || m.From.Name != "Overture" {
				t.Errorf("%s/%s: from %+v", locale, kind, m.From)
			}
			if m.Text == "" || m.HTML == "" {
				t.Errorf("%s/%s: text part %d bytes, html part %d bytes; want both", locale, kind, len(m.Text), len(m.HTML))
			}
			if !strings.Contains(m.HTML, `lang="`+locale+`"`) {
				t.Errorf("%s/%s: html is not in %s", locale, kind, locale)
			}
			for _, s := range w.body {
				if !strings.Contains(m.Text, s) || !strings.Contains(m.HTML, s) {
					t.Errorf("%s/%s: %q missing from text or html:\n%s", locale, kind, s, m.Text)
				}
			}
		}
	}
	if c := counts(t, api); total(c) != 18 || len(c) != 18 {
		t.Fatalf("mailpit holds %d messages under %d Message-IDs, want 18 and 18", total(c), len(c))
	}

	// No email on purpose: a provider account (nothing to confirm) and a
	// failed renewal charge (SubscriptionRenewalFailed says it).
	oauth := h.registered(t, uid("user-google"), "g@example.com", "en", "")
	h.mustHandle(t, oauth)
	renewalCharge := newEvent(t, eventtype.PaymentFailed, "/overture/payment", eventtype.PaymentData{
		PaymentID: "pay-3", SubscriptionID: "sub-g", UserID: uid("user-google"), Purpose: "renewal", Period: 2})
	h.mustHandle(t, renewalCharge)
	for _, e := range []event.Event{oauth, renewalCharge} {
		if _, ok, _ := WouldEmail(e); ok {
			t.Errorf("WouldEmail(%s) = true, want false", e.Type())
		}
	}
	if c := counts(t, api); total(c) != 18 {
		t.Fatalf("mailpit holds %d messages, want still 18", total(c))
	}
	// …but the provider account's contact is known.
	exp := newEvent(t, eventtype.SubscriptionExpired, "/overture/subscription", eventtype.SubscriptionData{UserID: uid("user-google"), Plan: "annual"})
	h.mustHandle(t, exp)
	if m := only(t, api, MessageID(exp.Source(), exp.ID())); m.To[0].Address != "g@example.com" || !strings.Contains(m.Text, "Premium, annual") {
		t.Fatalf("expired email for provider account: to %+v text %q", m.To, m.Text)
	}
}

func TestDuplicateDeliveriesSendOneEmail(t *testing.T) {
	t.Parallel()
	smtpURL, api := testenv.SMTP(t)
	h := start(t, smtpURL, api)
	h.n.lease = DefaultSendLease // see TestConcurrentFirstDeliveriesSendOneEmail
	h.mustHandle(t, h.registered(t, uid("u1"), "u1@example.com", "ru", "https://overture.test/confirm?token=T1"))
	paidPeriod(t, h.db, "s1", uid("u1"), "annual", 299000, time.Now().AddDate(1, 0, 0))
	e := newEvent(t, eventtype.SubscriptionRenewed, "/overture/subscription", eventtype.SubscriptionData{SubscriptionID: "s1", Period: 1, UserID: uid("u1"), Plan: "annual"})

	// Sequential redeliveries, then a burst of concurrent ones, each retried
	// as the broker would until it is acknowledged.
	for range 3 {
		h.mustHandle(t, e)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() { errs <- h.redeliver(t, e) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("duplicate delivery: %v", err)
		}
	}
	// The same event id from another source is another event.
	other := e.Clone()
	other.SetSource("/overture/subscription-workflow")
	h.mustHandle(t, other)

	c := counts(t, api)
	if c[MessageID(e.Source(), e.ID())] != 1 || c[MessageID(other.Source(), other.ID())] != 1 || total(c) != 3 {
		t.Fatalf("counts by Message-ID %v, want the renewal once per source plus the confirmation", c)
	}
}

func TestConcurrentFirstDeliveriesSendOneEmail(t *testing.T) {
	t.Parallel()
	smtpURL, api := testenv.SMTP(t)
	h := start(t, smtpURL, api)
	// The lease the function enforces in production (above the SMTP send
	// timeout): start's 300 ms lease, made for the crash tests, can run out
	// while a send is still in flight on a loaded machine, and an expired
	// lease is the one case where a second delivery may send.
	h.n.lease = DefaultSendLease
	h.mustHandle(t, h.registered(t, uid("u1"), "u1@example.com", "en", "https://overture.test/confirm?token=T1"))
	var events []event.Event
	for range 20 {
		events = append(events, newEvent(t, eventtype.SubscriptionCanceled, "/overture/subscription", eventtype.SubscriptionData{UserID: uid("u1")}))
	}
	var wg sync.WaitGroup
	for _, e := range events {
		for range 3 { // every event delivered three times at once
			wg.Go(func() {
				if err := h.redeliver(t, e); err != nil {
					t.Errorf("handle: %v", err)
				}
			})
		}
	}
	wg.Wait()
	c := counts(t, api)
	for _, e := range events {
		if got := c[MessageID(e.Source(), e.ID())]; got != 1 {
			t.Errorf("event %s emailed %d times, want 1", e.ID(), got)
		}
	}
	if total(c) != 21 {
		t.Fatalf("%d messages, want 21", total(c))
	}
}

// A crash after the SMTP server accepted the message but before the row was
// marked sent: the redelivery finds the row pending, asks mailpit for the
// Message-ID, finds it and sends nothing.
func TestCrashAfterAcceptIsNotSentAgain(t *testing.T) {
	t.Parallel()
	smtpURL, api := testenv.SMTP(t)
	h := start(t, smtpURL, api)
	crash := errors.New("process killed")
	h.n.afterAccept = func() error { return crash }
	reg := h.registered(t, uid("u1"), "u1@example.com", "en", "https://overture.test/confirm?token=T1")
	if err := h.handle(t, reg); !errors.Is(err, crash) {
		t.Fatalf("first delivery: %v, want the crash", err)
	}
	h.n.afterAccept = nil
	msgID := MessageID(reg.Source(), reg.ID())
	var state string
	if err := h.db.QueryRow(context.Background(), `SELECT state FROM notification_email WHERE message_id = $1`, msgID).Scan(&state); err != nil || state != "pending" {
		t.Fatalf("after the crash the row is %q (%v), want pending", state, err)
	}
	// The crashed sender's lease still holds: a redelivery now is told to come back.
	if err := h.handle(t, reg); !errors.Is(err, ErrInProgress) {
		t.Fatalf("redelivery within the lease: %v, want ErrInProgress", err)
	}
	h.afterLease(t, reg)
	h.mustHandle(t, reg)
	if c := counts(t, api); c[msgID] != 1 || total(c) != 1 {
		t.Fatalf("counts %v, want the confirmation once", c)
	}
	if err := h.db.QueryRow(context.Background(), `SELECT state FROM notification_email WHERE message_id = $1`, msgID).Scan(&state); err != nil || state != "sent" {
		t.Fatalf("after recovery the row is %q (%v), want sent", state, err)
	}
	if !strings.Contains(h.logs.String(), "found in the mail store") {
		t.Fatalf("recovery not logged:\n%s", h.logs)
	}
}

// Without a mail store to ask, the same crash yields a second copy — with the
// same Message-ID, which is what lets a downstream store drop it. This is the
// documented residual window.
func TestCrashWithoutMailStoreResendsWithSameMessageID(t *testing.T) {
	t.Parallel()
	smtpURL, api := testenv.SMTP(t)
	h := start(t, smtpURL, "")
	h.n.afterAccept = func() error { return errors.New("process killed") }
	reg := h.registered(t, uid("u1"), "u1@example.com", "en", "https://overture.test/confirm?token=T1")
	if err := h.handle(t, reg); err == nil {
		t.Fatal("first delivery succeeded despite the crash")
	}
	h.n.afterAccept = nil
	h.afterLease(t, reg)
	h.mustHandle(t, reg)
	msgID := MessageID(reg.Source(), reg.ID())
	if c := counts(t, api); c[msgID] != 2 || total(c) != 2 {
		t.Fatalf("counts %v, want two copies under one Message-ID", c)
	}
	a, err := AuditDelivery(context.Background(), h.db, api)
	if err != nil {
		t.Fatal(err)
	}
	if a.ExactlyOnce() || len(a.Duplicates) != 1 || a.Duplicates[0] != msgID || a.Sent != 1 {
		t.Fatalf("audit %s %v does not report the duplicate", a, a.Duplicates)
	}
	if !strings.Contains(h.logs.String(), "a copy with the same Message-ID may exist") {
		t.Fatalf("resend not logged:\n%s", h.logs)
	}
}

// A pending row whose message is already in the mail store (the state a
// crash leaves, set up directly) is only marked sent.
func TestPendingRowWithDeliveredMessageIsNotResent(t *testing.T) {
	t.Parallel()
	smtpURL, api := testenv.SMTP(t)
	h := start(t, smtpURL, api)
	ctx := context.Background()
	h.mustHandle(t, h.registered(t, uid("u1"), "u1@example.com", "ru", ""))
	paidPeriod(t, h.db, "s1", uid("u1"), "monthly", 29900, time.Now().AddDate(0, 1, 0))
	e := newEvent(t, eventtype.SubscriptionActivated, "/overture/subscription", eventtype.SubscriptionData{SubscriptionID: "s1", Period: 1, UserID: uid("u1"), Plan: "monthly"})
	msgID := MessageID(e.Source(), e.ID())
	if _, err := h.db.Exec(ctx, `INSERT INTO notification_email (event_source, event_id, event_type, kind, message_id, attempts)
		VALUES ($1, $2, $3, $4, $5, 1)`, e.Source(), e.ID(), e.Type(), KindSubscriptionActivated, msgID); err != nil {
		t.Fatal(err)
	}
	content, err := Render(KindSubscriptionActivated, "ru", map[string]any{"Email": "u1@example.com", "Plan": "x", "PeriodEnd": "", "Amount": ""})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.n.mailer.send(ctx, outgoing{to: "u1@example.com", messageID: msgID, date: time.Now(), content: content, kind: KindSubscriptionActivated}); err != nil {
		t.Fatal(err)
	}
	h.mustHandle(t, e)
	if c := counts(t, api); c[msgID] != 1 {
		t.Fatalf("counts %v, want %s once", c, msgID)
	}
}

func TestSMTPOutageLosesNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sink := smtptest.Start(t)
	api := sink.APIURL()
	h := start(t, sink.URL(), api)
	h.mustHandle(t, h.registered(t, uid("u1"), "u1@example.com", "en", "https://overture.test/confirm?token=T1"))

	sink.Down(t)
	var events []event.Event
	for i := range 5 {
		events = append(events, newEvent(t, eventtype.SubscriptionRenewalFailed, "/overture/subscription",
			eventtype.SubscriptionData{UserID: uid("u1"), Plan: "monthly", Reason: fmt.Sprint("attempt ", i)}))
	}
	events = append(events, h.reset(t, uid("u1"), "u1@example.com", "en"))
	for _, e := range events {
		for range 2 { // the broker's first tries, during the outage
			if err := h.handle(t, e); err == nil {
				t.Fatalf("%s handled during the SMTP outage", e.Type())
			}
		}
	}

	// Back at the same address with the same data: the earlier message is
	// still there.
	sink.Up(t)
	for _, e := range events {
		h.mustHandle(t, e) // the broker's retry after the outage
		h.mustHandle(t, e) // and a duplicate for good measure
	}
	c := counts(t, api)
	for _, e := range events {
		if got := c[MessageID(e.Source(), e.ID())]; got != 1 {
			t.Errorf("%s emailed %d times, want 1", e.ID(), got)
		}
	}
	if total(c) != len(events)+1 {
		t.Fatalf("%d messages, want %d", total(c), len(events)+1)
	}
	if a, err := AuditDelivery(ctx, h.db, api); err != nil || !a.ExactlyOnce() || a.Sent != len(events)+1 {
		t.Fatalf("audit after the outage: %s, %v", a, err)
	}
	var failed int
	if err := h.db.QueryRow(ctx, `SELECT count(*) FROM notification_email WHERE attempts >= 3 AND state = 'sent'`).Scan(&failed); err != nil || failed != len(events) {
		t.Fatalf("%d rows record the failed attempts (%v), want %d", failed, err, len(events))
	}
}

func TestSubscriptionEventBeforeRegistrationIsRetried(t *testing.T) {
	t.Parallel()
	smtpURL, api := testenv.SMTP(t)
	h := start(t, smtpURL, api)
	paidPeriod(t, h.db, "s-late", uid("late"), "monthly", 29900, time.Now().AddDate(0, 1, 0))
	e := newEvent(t, eventtype.SubscriptionActivated, "/overture/subscription", eventtype.SubscriptionData{SubscriptionID: "s-late", Period: 1, UserID: uid("late"), Plan: "monthly"})
	for range 2 {
		if err := h.handle(t, e); !errors.Is(err, ErrNoContact) {
			t.Fatalf("activation before registration: %v, want ErrNoContact", err)
		}
	}
	if c := counts(t, api); total(c) != 0 {
		t.Fatalf("emails sent without a contact: %v", c)
	}
	h.mustHandle(t, h.registered(t, uid("late"), "late@example.com", "ru", "https://overture.test/confirm?token=T2"))
	h.mustHandle(t, e)
	m := only(t, api, MessageID(e.Source(), e.ID()))
	if m.To[0].Address != "late@example.com" || m.Subject != "Подписка Overture Премиум оформлена" {
		t.Fatalf("activation email to %+v, subject %q", m.To, m.Subject)
	}
}

func TestBadEventsAreRejected(t *testing.T) {
	t.Parallel()
	smtpURL, api := testenv.SMTP(t)
	h := start(t, smtpURL, api)
	bad := []event.Event{
		newEvent(t, "music.overture.catalog.track_published.v1", "/overture/catalog", map[string]string{}),
		newEvent(t, eventtype.UserRegistered, "/overture/auth", map[string]string{"user_id": "x"}),
		newEvent(t, eventtype.PasswordResetRequested, "/overture/auth", eventtype.PasswordResetRequestedData{Email: "a@example.com"}),
		newEvent(t, eventtype.SubscriptionExpired, "/overture/subscription", eventtype.SubscriptionData{}),
		newEvent(t, eventtype.UserRegistered, "/overture/auth", eventtype.UserRegisteredData{UserID: "x", Email: "not an address"}),
	}
	malformed := event.New()
	malformed.SetID("m1")
	malformed.SetSource("/overture/payment")
	malformed.SetType(eventtype.PaymentRefunded)
	_ = malformed.SetData(event.ApplicationJSON, []byte(`{"user_id": 7`))
	bad = append(bad, malformed)
	for _, e := range bad {
		if err := h.handle(t, e); !errors.Is(err, ErrBadEvent) {
			t.Errorf("%s %s: %v, want ErrBadEvent", e.Type(), e.Data(), err)
		}
	}
	if c := counts(t, api); total(c) != 0 {
		t.Fatalf("bad events sent email: %v", c)
	}
}

// Links carry single-use tokens and bodies carry addresses: neither may reach
// the logs, nor the errors the host logs.
func TestLogsCarryNoTokensOrAddresses(t *testing.T) {
	t.Parallel()
	sink := smtptest.Start(t)
	h := start(t, sink.URL(), sink.APIURL())
	const addr = "private.person@example.com"
	reg := h.registered(t, uid("u1"), addr, "en", "https://overture.test/confirm?token=")
	reset := h.reset(t, uid("u1"), addr, "en")
	token, resetToken := eventToken(t, reg), eventToken(t, reset)
	var errs []error
	h.mustHandle(t, reg)
	sink.Down(t) // failures get logged with their causes
	errs = append(errs, h.handle(t, reset))
	sink.Up(t)
	h.mustHandle(t, reset)
	h.mustHandle(t, reset)
	logs := h.logs.String()
	if !strings.Contains(logs, "email sent") || !strings.Contains(logs, "email not sent; the broker will retry") {
		t.Fatalf("expected send and failure logs, got:\n%s", logs)
	}
	for _, secret := range []string{token, resetToken, addr, "overture.test/confirm", "overture.test/reset"} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain %q:\n%s", secret, logs)
		}
		for _, err := range errs {
			if err != nil && strings.Contains(err.Error(), secret) {
				t.Errorf("error %q contains %q", err, secret)
			}
		}
	}
	if c := counts(t, sink.APIURL()); total(c) != 2 {
		t.Fatalf("counts %v, want confirmation and reset once each", c)
	}
}

func TestStartRejectsBadConfig(t *testing.T) {
	t.Parallel()
	db := testenv.Postgres(t)
	for name, cfg := range map[string]map[string]string{
		"no smtp":     {"DATABASE_URL": db},
		"bad smtp":    {"DATABASE_URL": db, "SMTP_URL": "http://mail.example.com"},
		"bad from":    {"DATABASE_URL": db, "SMTP_URL": "smtp://127.0.0.1:1025", "MAIL_FROM": "nobody"},
		"no database": {"SMTP_URL": "smtp://127.0.0.1:1025"},
		"short lease": {"DATABASE_URL": db, "SMTP_URL": "smtp://127.0.0.1:1025", "MAIL_SEND_LEASE": "2s"},
	} {
		n := New()
		n.Log = slog.New(slog.DiscardHandler)
		if err := n.Start(context.Background(), cfg); err == nil {
			_ = n.Stop(context.Background())
			t.Errorf("%s: Start accepted %v", name, cfg)
		}
	}
}

func TestAuditFindsMissingAndUnknownEmails(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	smtpURL, api := testenv.SMTP(t)
	h := start(t, smtpURL, api)
	h.mustHandle(t, h.registered(t, uid("u1"), "u1@example.com", "en", "https://overture.test/confirm?token=T1"))
	if a, err := AuditDelivery(ctx, h.db, api); err != nil || !a.ExactlyOnce() || a.Sent != 1 || a.Stored != 1 {
		t.Fatalf("audit after one email: %s, %v", a, err)
	}
	// A row marked sent whose message never arrived, and a message of ours
	// no row accounts for.
	if _, err := h.db.Exec(ctx, `INSERT INTO notification_email (event_source, event_id, event_type, kind, message_id, state)
		VALUES ('/x', 'lost', 't', 'k', $1, 'sent')`, MessageID("/x", "lost")); err != nil {
		t.Fatal(err)
	}
	content, err := Render(KindSubscriptionExpired, "en", map[string]any{"Email": "u1@example.com", "Plan": "p"})
	if err != nil {
		t.Fatal(err)
	}
	stray := MessageID("/x", "stray")
	if err := h.n.mailer.send(ctx, outgoing{to: "u1@example.com", messageID: stray, date: time.Now(), content: content, kind: KindSubscriptionExpired}); err != nil {
		t.Fatal(err)
	}
	a, err := AuditDelivery(ctx, h.db, api)
	if err != nil {
		t.Fatal(err)
	}
	if a.ExactlyOnce() || len(a.Missing) != 1 || a.Missing[0] != MessageID("/x", "lost") || len(a.Unknown) != 1 || a.Unknown[0] != stray {
		t.Fatalf("audit %s: missing %v unknown %v", a, a.Missing, a.Unknown)
	}
}

// A server that refuses the recipient echoes the address, and go-mail lists
// it in its error; neither reaches the logs, the returned error or the ledger.
func TestRejectedRecipientIsNotLogged(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir, err := os.MkdirTemp(testenv.Dir(), "strict-")
	if err != nil {
		t.Fatal(err)
	}
	strict, err := infra.StartSMTP(ctx, infra.SMTPOptions{Dir: dir, Args: []string{"--smtp-allowed-recipients", `@allowed\.example$`}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = strict.Stop(5 * time.Second) })
	h := start(t, strict.URL(), "")
	const addr = "Secret.Person@refused.example"
	reg := h.registered(t, uid("u1"), addr, "en", "https://overture.test/confirm?token=T1")
	err = h.handle(t, reg)
	if err == nil {
		t.Fatal("mailpit accepted a refused recipient")
	}
	var lastError string
	if qerr := h.db.QueryRow(ctx, `SELECT coalesce(last_error, '') FROM notification_email`).Scan(&lastError); qerr != nil {
		t.Fatal(qerr)
	}
	if !strings.Contains(lastError, "<recipient>") {
		t.Errorf("ledger error %q does not show the redaction", lastError)
	}
	for where, text := range map[string]string{"error": err.Error(), "logs": h.logs.String(), "ledger": lastError} {
		if strings.Contains(strings.ToLower(text), strings.ToLower(addr)) {
			t.Errorf("%s shows the address: %s", where, text)
		}
	}
	// Allowed recipients still get their email.
	h.mustHandle(t, h.registered(t, uid("u2"), "fine@allowed.example", "en", "https://overture.test/confirm?token=T2"))
	if c := counts(t, strict.APIURL()); total(c) != 1 {
		t.Fatalf("counts %v, want the allowed email", c)
	}
}
