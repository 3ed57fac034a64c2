package notification

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/internal/auth"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/testenv"
)

// testBaseURL and testResetLink are the links' configuration in tests.
const (
	testBaseURL   = "https://overture.test"
	testResetLink = "https://overture.test/reset?token="
)

// linkExpiry is when seeded link secrets expire.
var linkExpiry = time.Date(2099, 11, 26, 20, 0, 0, 0, time.UTC)

// uid is the account id (a UUID, as auth's are) named name in a test.
func uid(name string) string { return uuid.NewSHA1(uuid.NameSpaceOID, []byte(name)).String() }

// seedAccount makes auth's account userID with addr and locale, as
// registration does (idempotent).
func seedAccount(t testing.TB, db *pgxpool.Pool, userID, addr, locale string) {
	t.Helper()
	if _, err := db.Exec(context.Background(), `INSERT INTO auth_account (id, email, locale, confirmed_at) VALUES ($1, $2, $3, now()) ON CONFLICT (id) DO NOTHING`,
		userID, addr, Locale(locale)); err != nil {
		t.Fatalf("seed account: %v", err)
	}
}

// seedLink stores a live one-time secret of kind ("confirm" or "reset") for
// userID as auth does, and returns it.
func seedLink(t testing.TB, db *pgxpool.Pool, kind, userID string) string {
	t.Helper()
	secret := auth.NewSecret(map[string]string{"confirm": auth.KindConfirm, "reset": auth.KindReset}[kind])
	h := sha256.Sum256([]byte(secret))
	if _, err := db.Exec(context.Background(), `INSERT INTO auth_onetime (hash, kind, account_id, expires_at) VALUES ($1, $2, $3, $4)`,
		h[:], kind, userID, linkExpiry); err != nil {
		t.Fatalf("seed %s link: %v", kind, err)
	}
	return secret
}

// withToken replaces the token of link by secret.
func withToken(link, secret string) string {
	i := strings.LastIndex(link, "token=")
	return link[:i+len("token=")] + secret
}

// registered seeds auth's account (and, for a confirmURL, its link secret)
// and returns the UserRegistered auth would publish; the URL's token is the
// seeded secret.
func (h *harness) registered(t *testing.T, userID, addr, locale, confirmURL string) event.Event {
	t.Helper()
	seedAccount(t, h.db, userID, addr, locale)
	if confirmURL != "" {
		confirmURL = withToken(confirmURL, seedLink(t, h.db, "confirm", userID))
	}
	return registered(t, userID, addr, locale, confirmURL)
}

// reset seeds a reset link for userID and returns auth's event for it.
func (h *harness) reset(t *testing.T, userID, addr, locale string) event.Event {
	t.Helper()
	seedAccount(t, h.db, userID, addr, locale)
	return newEvent(t, eventtype.PasswordResetRequested, auth.Source, eventtype.PasswordResetRequestedData{
		UserID: userID, Email: addr, Locale: locale, ResetURL: testResetLink + seedLink(t, h.db, "reset", userID),
		ExpiresAt: time.Now().Add(time.Hour)})
}

// paidPeriod records subscription id of userID with paid period 1 (plan,
// amount in RUB, ending end), as the subscription function does.
func paidPeriod(t testing.TB, db *pgxpool.Pool, id, userID, plan string, amount int64, end time.Time) {
	t.Helper()
	ctx := context.Background()
	if _, err := db.Exec(ctx, `INSERT INTO subscription (id, user_id, plan, status, amount_minor, currency, current_period, period_start, period_end)
		VALUES ($1,$2,$3,'active',$4,'RUB',1,$5,$6) ON CONFLICT (id) DO NOTHING`, id, userID, plan, amount, end.AddDate(0, -1, 0), end); err != nil {
		t.Fatalf("seed subscription: %v", err)
	}
	if _, err := db.Exec(ctx, `INSERT INTO subscription_period (subscription_id, period, payment_id, amount_minor, starts_at, ends_at)
		VALUES ($1,1,$2,$3,$4,$5) ON CONFLICT DO NOTHING`, id, id+":1:1", amount, end.AddDate(0, -1, 0), end); err != nil {
		t.Fatalf("seed paid period: %v", err)
	}
}

// eventToken is the secret in the link of a confirmation or reset event.
func eventToken(t *testing.T, e event.Event) string {
	t.Helper()
	var d struct {
		ConfirmURL string `json:"confirm_url"`
		ResetURL   string `json:"reset_url"`
	}
	if err := json.Unmarshal(e.Data(), &d); err != nil {
		t.Fatal(err)
	}
	return linkToken(d.ConfirmURL + d.ResetURL)
}

// The attacks of issue 10: a forged PasswordResetRequested made Overture's
// sender email an attacker's link to any address, and a forged
// SubscriptionActivated sent "Premium is active" with no subscription at all.
// Now a link email needs a live secret auth stored for the account and goes to
// the account's own address with a link built here; an activation email needs
// the paid period in the subscription store. Refused events are acknowledged
// (no retry) and leave mailpit empty; the real ones still arrive.
func TestForgedEventsSendNoEmail(t *testing.T) {
	t.Parallel()
	smtpURL, api := testenv.SMTP(t)
	h := start(t, smtpURL, api)
	victim := uid("victim")
	seedAccount(t, h.db, victim, "victim@example.com", "en")
	h.mustHandle(t, registered(t, victim, "victim@example.com", "en", "")) // the contact, as a provider sign-up records it
	live := seedLink(t, h.db, "reset", victim)
	used := seedLink(t, h.db, "reset", victim)
	if _, err := h.db.Exec(context.Background(), `UPDATE auth_onetime SET used_at = now() WHERE hash = $1`, func() []byte {
		s := sha256.Sum256([]byte(used))
		return s[:]
	}()); err != nil {
		t.Fatal(err)
	}
	reset := func(source, userID, addr, link string) event.Event {
		return newEvent(t, eventtype.PasswordResetRequested, source, eventtype.PasswordResetRequestedData{
			UserID: userID, Email: addr, Locale: "en", ResetURL: link, ExpiresAt: time.Now().Add(time.Hour)})
	}
	end := time.Now().AddDate(10, 0, 0)
	forged := map[string]event.Event{
		"the reproduction: attacker's link to any address": reset(auth.Source, victim, "anyone@example.com", "https://evil.example/reset?token=gotcha"),
		"a well-formed secret auth never stored":           reset(auth.Source, victim, "victim@example.com", testResetLink+auth.NewSecret(auth.KindReset)),
		"a used secret":                                    reset(auth.Source, victim, "victim@example.com", testResetLink+used),
		"a live secret of another account":                 reset(auth.Source, uid("someone"), "anyone@example.com", testResetLink+live),
		"a live secret from a source not auth":             reset("/overture/e2e", victim, "victim@example.com", testResetLink+live),
		"a confirm link with the reset secret":             registered(t, victim, "anyone@example.com", "en", testBaseURL+"/v1/auth/confirm?token="+live),
		"activation of no subscription":                    newEvent(t, eventtype.SubscriptionActivated, "/overture/subscription", eventtype.SubscriptionData{SubscriptionID: "nowhere", Period: 1, UserID: victim, PeriodEnd: &end}),
	}
	paidPeriod(t, h.db, "s-pending", victim, "annual", 299000, end)
	if _, err := h.db.Exec(context.Background(), `DELETE FROM subscription_period WHERE subscription_id = 's-pending'`); err != nil {
		t.Fatal(err)
	}
	forged["activation of an unpaid subscription"] = newEvent(t, eventtype.SubscriptionActivated, "/overture/subscription",
		eventtype.SubscriptionData{SubscriptionID: "s-pending", Period: 1, UserID: victim, PeriodEnd: &end})
	for name, e := range forged {
		if err := h.handle(t, e); err != nil {
			t.Errorf("%s: %v, want acknowledged", name, err)
		}
	}
	if c := counts(t, api); total(c) != 0 {
		t.Fatalf("forged events sent %d emails", total(c))
	}
	if !strings.Contains(h.logs.String(), "refused an event its producer's records do not back") {
		t.Fatal("refusals not logged")
	}
	// The real reset: to the account's address, with this function's link.
	real := reset(auth.Source, victim, "anyone@example.com", "https://evil.example/reset?token="+live)
	h.mustHandle(t, real)
	m := only(t, api, MessageID(real.Source(), real.ID()))
	if len(m.To) != 1 || m.To[0].Address != "victim@example.com" || !strings.Contains(m.Text, testResetLink+live) || strings.Contains(m.Text, "evil.example") {
		t.Fatalf("real reset email to %+v:\n%s", m.To, m.Text)
	}
}

// FuzzLinkToken: whatever link an event carries, the token taken from it is
// either refused or exactly a well-formed secret, so the link built from it
// stays on our base URL.
func FuzzLinkToken(f *testing.F) {
	f.Add("https://overture.test/v1/auth/confirm?token=" + auth.NewSecret(auth.KindConfirm))
	f.Add("https://evil.example/x?token=opr_AAAA&next=https://evil.example#token=1")
	f.Add("token=")
	f.Add("")
	f.Fuzz(func(t *testing.T, link string) {
		tok := linkToken(link)
		if strings.ContainsAny(tok, "&#") {
			t.Fatalf("token %q keeps a separator", tok)
		}
		for _, kind := range []string{auth.KindConfirm, auth.KindReset} {
			if _, err := auth.ParseSecret(kind, tok); err == nil && strings.ContainsFunc(tok, func(r rune) bool {
				return !(r == '_' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
			}) {
				t.Fatalf("accepted token %q with characters outside base64url", tok)
			}
		}
	})
}

// The uploading admin hears why an upload failed — also an admin made by
// `overture admin create`, who never registered a notification contact — and
// only for an upload the ingestion records show failed, with the reason the
// record holds: a forged failure (an upload that did not fail, or none at
// all) sends nothing.
func TestIngestionFailedEmailsTheUploader(t *testing.T) {
	t.Parallel()
	smtpURL, api := testenv.SMTP(t)
	h := start(t, smtpURL, api)
	admin := uid("ingest-admin")
	seedAccount(t, h.db, admin, "admin@example.com", "en")
	upload := func(state, reason string) string {
		id := uuid.NewString()
		if _, err := h.db.Exec(context.Background(), `INSERT INTO ingest_upload (id, bucket, key, etag, state, reason, detail, uploader_id)
			VALUES ($1::uuid, 'uploads', 'a/' || $1::text || '.mp3', 'e1', $2, nullif($3, ''), nullif($3, ''), $4)`, id, state, reason, admin); err != nil {
			t.Fatal(err)
		}
		return id
	}
	failed := func(uploadID, reason string) event.Event {
		return newEvent(t, eventtype.IngestionFailed, "/overture/ingest", eventtype.IngestionData{UploadID: uploadID, Bucket: "uploads",
			Key: "a/song.mp3", UploaderID: admin, Reason: reason})
	}
	for name, e := range map[string]event.Event{
		"an upload that is ready":  failed(upload("ready", ""), "not_audio"),
		"an upload that is no one": failed(uuid.NewString(), "not_audio"),
	} {
		if err := h.handle(t, e); err != nil {
			t.Errorf("%s: %v, want acknowledged", name, err)
		}
	}
	if c := counts(t, api); total(c) != 0 {
		t.Fatalf("forged failures sent %d emails", total(c))
	}
	real := failed(upload("failed", "truncated"), "an attacker's reason")
	h.mustHandle(t, real)
	m := only(t, api, MessageID(real.Source(), real.ID()))
	if len(m.To) != 1 || m.To[0].Address != "admin@example.com" || !strings.Contains(m.Text, "truncated") || strings.Contains(m.Text, "attacker") {
		t.Fatalf("failure email to %+v:\n%s", m.To, m.Text)
	}
}

// A registration without a link (an external provider verified the address)
// records the account's confirmed address from auth, never the event's: a
// forged one naming an attacker's address, or an account auth has not
// confirmed, records nothing later mails could go to.
func TestForgedProviderSignUpRecordsNoContact(t *testing.T) {
	t.Parallel()
	smtpURL, api := testenv.SMTP(t)
	h := start(t, smtpURL, api)
	user, unconfirmed := uid("provider-user"), uid("unconfirmed")
	seedAccount(t, h.db, user, "listener@example.com", "en")
	if _, err := h.db.Exec(context.Background(), `INSERT INTO auth_account (id, email, locale) VALUES ($1, 'new@example.com', 'en')`, unconfirmed); err != nil {
		t.Fatal(err)
	}
	for name, e := range map[string]event.Event{
		"an unconfirmed account": registered(t, unconfirmed, "new@example.com", "en", ""),
		"not from auth":          newEvent(t, eventtype.UserRegistered, "/overture/e2e", eventtype.UserRegisteredData{UserID: user, Email: "attacker@evil.example", Locale: "en"}),
	} {
		if err := h.handle(t, e); err != nil {
			t.Errorf("%s: %v, want acknowledged", name, err)
		}
	}
	h.mustHandle(t, registered(t, user, "attacker@evil.example", "en", ""))
	var addr string
	if err := h.db.QueryRow(context.Background(), `SELECT email FROM notification_contact WHERE user_id = $1`, user).Scan(&addr); err != nil || addr != "listener@example.com" {
		t.Fatalf("contact %q (%v), want the account's own address", addr, err)
	}
	var n int
	if err := h.db.QueryRow(context.Background(), `SELECT count(*) FROM notification_contact WHERE user_id = $1`, unconfirmed).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d contacts for an unconfirmed account (%v)", n, err)
	}
}
