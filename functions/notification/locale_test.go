package notification

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/overture-music/overture/internal/auth"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/testenv"
)

// changeLocale sets the locale of account userID as PATCH /v1/auth/me does
// (one more locale_version) and returns the LocaleChanged auth writes with it.
func (h *harness) changeLocale(t *testing.T, userID, locale string) event.Event {
	t.Helper()
	var version int64
	if err := h.db.QueryRow(context.Background(), `UPDATE auth_account SET locale = $2, locale_version = locale_version + 1
		WHERE id = $1 RETURNING locale_version`, userID, locale).Scan(&version); err != nil {
		t.Fatalf("change locale: %v", err)
	}
	return newEvent(t, eventtype.LocaleChanged, auth.Source, eventtype.LocaleChangedData{UserID: userID, Locale: locale, Version: version})
}

// contactRow is a user's notification_contact row.
type contactRow struct {
	locale  string
	version int64
	updated time.Time
}

func (h *harness) contactRow(t *testing.T, userID string) contactRow {
	t.Helper()
	var c contactRow
	if err := h.db.QueryRow(context.Background(), `SELECT locale, locale_version, updated_at FROM notification_contact WHERE user_id = $1`,
		userID).Scan(&c.locale, &c.version, &c.updated); err != nil {
		t.Fatalf("contact of %s: %v", userID, err)
	}
	return c
}

// activationSubject handles a new SubscriptionActivated of userID's
// subscription (its paid period seeded once) and returns its email's subject.
func (h *harness) activationSubject(t *testing.T, userID string) string {
	t.Helper()
	sub := "s-" + userID
	paidPeriod(t, h.db, sub, userID, "monthly", 29900, time.Date(2026, 12, 25, 0, 0, 0, 0, time.UTC))
	e := newEvent(t, eventtype.SubscriptionActivated, "/overture/subscription", eventtype.SubscriptionData{
		SubscriptionID: sub, Period: 1, UserID: userID, Plan: "monthly"})
	h.mustHandle(t, e)
	return only(t, h.api, MessageID(e.Source(), e.ID())).Subject
}

const (
	activatedEN = "Your Overture Premium is active"
	activatedRU = "Подписка Overture Премиум оформлена"
)

// TestLocaleChangeReachesLaterEmails: a listener registered in English who
// switches the account to Russian gets the next subscription email in
// Russian; a repeated LocaleChanged changes nothing, and an older change
// delivered after a newer one is ignored.
func TestLocaleChangeReachesLaterEmails(t *testing.T) {
	t.Parallel()
	smtpURL, api := testenv.SMTP(t)
	h := start(t, smtpURL, api)
	u := uid("switcher")
	h.mustHandle(t, h.registered(t, u, "switcher@example.com", "en", "https://overture.test/confirm?token=T"))
	if got := h.activationSubject(t, u); got != activatedEN {
		t.Fatalf("before the change: %q", got)
	}

	toRU := h.changeLocale(t, u, "ru")
	h.mustHandle(t, toRU)
	if c := h.contactRow(t, u); c.locale != "ru" || c.version != 1 {
		t.Fatalf("contact after the change: %+v", c)
	}
	if got := h.activationSubject(t, u); got != activatedRU {
		t.Fatalf("after the change to ru: %q, want %q", got, activatedRU)
	}

	t.Run("DuplicateChangesNothing", func(t *testing.T) {
		before := h.contactRow(t, u)
		sent := total(counts(t, api))
		for range 3 {
			h.mustHandle(t, toRU)
		}
		if after := h.contactRow(t, u); after != before {
			t.Fatalf("a redelivery changed the contact: %+v, was %+v", after, before)
		}
		if n := total(counts(t, api)); n != sent {
			t.Fatalf("a locale change sent email: %d messages, were %d", n, sent)
		}
	})

	t.Run("OlderAfterNewerIsIgnored", func(t *testing.T) {
		toEN := h.changeLocale(t, u, "en") // version 2
		backToRU := h.changeLocale(t, u, "ru")
		h.mustHandle(t, backToRU) // version 3 overtakes 2
		h.mustHandle(t, toEN)
		if c := h.contactRow(t, u); c.locale != "ru" || c.version != 3 {
			t.Fatalf("the older change (en, 2) overwrote the newer (ru, 3): %+v", c)
		}
		if got := h.activationSubject(t, u); got != activatedRU {
			t.Fatalf("after an overtaken change: %q, want %q", got, activatedRU)
		}
		if !strings.Contains(h.logs.String(), "overtaken by a newer one") {
			t.Fatalf("the ignored change is not logged:\n%s", h.logs)
		}
	})

	t.Run("RegistrationReadBeforeTheChangeKeepsIt", func(t *testing.T) {
		// A registration that read the account before the change (version 0)
		// and is processed after it: the address is kept, the language not.
		if err := h.n.upsertContact(context.Background(), u, account{email: "switcher@example.com", locale: "en"}); err != nil {
			t.Fatal(err)
		}
		if c := h.contactRow(t, u); c.locale != "ru" || c.version != 3 {
			t.Fatalf("a stale registration overwrote the locale: %+v", c)
		}
	})
}

// TestLocaleChangeBeforeRegistration: a change processed before the user's
// registration records the contact from auth's account, and the registration
// processed later does not put the sign-up language back.
func TestLocaleChangeBeforeRegistration(t *testing.T) {
	t.Parallel()
	smtpURL, api := testenv.SMTP(t)
	h := start(t, smtpURL, api)
	u := uid("early")
	reg := h.registered(t, u, "early@example.com", "en", "https://overture.test/confirm?token=T")
	h.mustHandle(t, h.changeLocale(t, u, "ru"))
	if c := h.contactRow(t, u); c.locale != "ru" || c.version != 1 {
		t.Fatalf("contact from the change: %+v", c)
	}
	h.mustHandle(t, reg)
	if got := h.activationSubject(t, u); got != activatedRU {
		t.Fatalf("%q, want %q", got, activatedRU)
	}
	if n := total(counts(t, api)); n != 2 { // the confirmation and the activation
		t.Fatalf("%d emails, want 2", n)
	}
}

// TestLocaleChangesAuthDoesNotBackAreRefused: a LocaleChanged not from auth,
// one for an account auth does not have and one claiming a version auth has
// not reached change nothing and are acknowledged (retrying cannot make them
// true); a malformed one is a bad event.
func TestLocaleChangesAuthDoesNotBackAreRefused(t *testing.T) {
	t.Parallel()
	smtpURL, api := testenv.SMTP(t)
	h := start(t, smtpURL, api)
	u := uid("victim")
	h.mustHandle(t, h.registered(t, u, "victim@example.com", "en", "https://overture.test/confirm?token=T"))
	before := h.contactRow(t, u)
	for name, e := range map[string]event.Event{
		"another source": newEvent(t, eventtype.LocaleChanged, "/overture/payment", eventtype.LocaleChangedData{UserID: u, Locale: "ru", Version: 1}),
		"future version": newEvent(t, eventtype.LocaleChanged, auth.Source, eventtype.LocaleChangedData{UserID: u, Locale: "ru", Version: 1 << 40}),
		"no account":     newEvent(t, eventtype.LocaleChanged, auth.Source, eventtype.LocaleChangedData{UserID: uid("nobody"), Locale: "ru", Version: 1}),
	} {
		if err := h.handle(t, e); err != nil {
			t.Errorf("%s: %v, want acknowledged", name, err)
		}
	}
	if after := h.contactRow(t, u); after != before {
		t.Fatalf("a refused change changed the contact: %+v, was %+v", after, before)
	}
	var n int
	if err := h.db.QueryRow(context.Background(), `SELECT count(*) FROM notification_contact WHERE user_id = $1`, uid("nobody")).Scan(&n); err != nil || n != 0 {
		t.Fatalf("contact for an account auth does not have: %d %v", n, err)
	}
	for name, d := range map[string]any{
		"no user":    eventtype.LocaleChangedData{Locale: "ru", Version: 1},
		"no version": eventtype.LocaleChangedData{UserID: u, Locale: "ru"},
		"german":     eventtype.LocaleChangedData{UserID: u, Locale: "de", Version: 1},
		"not json":   []byte(`{"user_id": 7`),
	} {
		if err := h.handle(t, newEvent(t, eventtype.LocaleChanged, auth.Source, d)); !errors.Is(err, ErrBadEvent) {
			t.Errorf("%s: %v, want ErrBadEvent", name, err)
		}
	}
	if _, ok, _ := WouldEmail(newEvent(t, eventtype.LocaleChanged, auth.Source, eventtype.LocaleChangedData{UserID: u, Locale: "ru", Version: 1})); ok {
		t.Fatal("WouldEmail(LocaleChanged) = true")
	}
	if c := total(counts(t, api)); c != 1 {
		t.Fatalf("%d emails, want only the confirmation", c)
	}
}
