// Package notification is the function that emails listeners: the
// registration confirmation and password-reset links from auth, and every
// subscription fact a paying user must hear about (activated, payment failed,
// refunded, renewed, renewal failed, canceled, expired). It writes each in
// the listener's language, which it keeps from the account's registration and
// its later changes (LocaleChanged; see locale.go).
//
// Email is the one effect in Overture that cannot be rolled back or
// deduplicated after the fact by our own database, and the broker delivers
// every event at least once. So each event that warrants an email gets a row
// in notification_email, committed BEFORE the SMTP conversation starts and
// marked sent right after the server accepts the message, and each email's
// Message-ID is derived from its event (see [MessageID]). A redelivered event
// finds the row sent and does nothing; a row left pending by a crash between
// the server's acceptance and our update is resolved by asking the mail store
// whether that Message-ID arrived before sending again. docs/notifications.md
// spells the argument out.
package notification

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	netmail "net/mail"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/internal/auth"
	"github.com/overture-music/overture/internal/config"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/ingest"
	"github.com/overture-music/overture/internal/lifecycle"
	"github.com/overture-music/overture/internal/postgres"
	sub "github.com/overture-music/overture/internal/subscription"
	"github.com/overture-music/overture/internal/telemetry"
)

// Name is the function's name in func.yaml and in Trigger subscriber refs.
const Name = "notification"

// DefaultFrom is the sender when MAIL_FROM is not set.
const DefaultFrom = "Overture <no-reply@overture.local>"

//go:embed migrations/*.sql
var migrations embed.FS

var (
	// ErrNoContact: a subscription event arrived for a user whose
	// UserRegistered has not been seen yet (events of different producers are
	// not ordered). The error makes the broker redeliver later; by then the
	// registration has normally arrived.
	ErrNoContact = errors.New("no contact for user yet")
	// ErrBadEvent: the event cannot produce an email however often it is
	// retried (malformed data, unknown type); after the broker's retries it
	// ends in the dead-letter sink for a person to look at.
	ErrBadEvent = errors.New("bad event")
	// ErrInProgress: another delivery of the same event holds the send lease;
	// the broker retries and the retry finds the email sent.
	ErrInProgress = errors.New("email for this event is being sent by another delivery")
)

// deliveryChecker answers whether a message with a Message-ID reached the
// mail store; [Mailpit] is one.
type deliveryChecker interface {
	Delivered(ctx context.Context, messageID string) (bool, error)
}

// Notifier is the notification function. Its base's logger receives the
// function's logs; email bodies, links and addresses are never logged.
type Notifier struct {
	lifecycle.Base

	pool    *postgres.Pool
	mailer  *mailer
	checker deliveryChecker
	// lease is how long one delivery owns the right to send an email; longer
	// than any SMTP conversation (sendTimeout), so only a crashed sender's
	// lease ever expires.
	lease time.Duration
	// afterAccept runs after the SMTP server accepted a message and before the
	// row is marked sent; tests make it fail to play a crash in that window.
	afterAccept func() error
	// confirmLink and resetLink are the links up to the token (see Start).
	confirmLink, resetLink string
}

// New returns an unstarted notification function.
func New() *Notifier { return &Notifier{lease: DefaultSendLease} }

// DefaultSendLease is how long a delivery owns the send of one email unless
// MAIL_SEND_LEASE says otherwise; a crash mid-send delays that email by at
// most this much (plus the broker's backoff).
const DefaultSendLease = 30 * time.Second

// Config is the function's settings:
//
//	DATABASE_URL     PostgreSQL (contacts and the email ledger)          required
//	SMTP_URL         smtp://[user:pass@]host:port[?tls=…] or smtps://…   required
//	MAIL_FROM        sender, default "Overture <no-reply@overture.local>"
//	MAILPIT_URL      mailpit's HTTP API base; when set, a possibly-sent email
//	                 is looked up there by Message-ID before it is sent again
//	MAIL_SEND_LEASE  Go duration a delivery owns a send, default 30s; must
//	                 exceed the SMTP timeout (10s)
//	PUBLIC_BASE_URL  where auth's links point: <base>/v1/auth/confirm?token=  required
//	AUTH_RESET_LINK  the reset link up to the token, as auth reads it; default
//	                 <base>/v1/auth/password/reset?token=
//	AUTH_CONFIRM_LINK the confirmation link up to the token (a web app's
//	                 page, e.g. <base>/confirm?token=); default
//	                 <base>/v1/auth/confirm?token=
type Config struct {
	DatabaseURL string
	SMTP        smtpConfig
	From        string
	MailpitURL  string
	Lease       time.Duration // 0: the function's own (DefaultSendLease)
	ConfirmLink string
	ResetLink   string
}

// Read fills c from r; every problem is recorded on r.
func (c *Config) Read(r *config.Reader) {
	c.DatabaseURL = r.String(postgres.KeyDatabaseURL)
	if raw := r.Secret("SMTP_URL"); !raw.IsZero() { // may carry a password
		var err error
		if c.SMTP, err = parseSMTPURL(raw.Reveal()); err != nil {
			r.Fail("SMTP_URL", "%w", err)
		}
	}
	c.From = r.StringOr("MAIL_FROM", DefaultFrom)
	if err := validFrom(c.From); err != nil {
		r.Fail("MAIL_FROM", "%q: %w", c.From, err)
	}
	c.MailpitURL = r.URLOr("MAILPIT_URL", "")
	if c.Lease = r.DurationOr("MAIL_SEND_LEASE", 0); c.Lease != 0 && c.Lease <= sendTimeout {
		r.Fail("MAIL_SEND_LEASE", "want a duration above %s", sendTimeout)
	}
	base := r.URL("PUBLIC_BASE_URL")
	c.ConfirmLink = r.StringOr("AUTH_CONFIRM_LINK", base+"/v1/auth/confirm?token=")
	c.ResetLink = r.StringOr("AUTH_RESET_LINK", base+"/v1/auth/password/reset?token=")
}

// ConfigKeys lists the settings the function reads.
func (n *Notifier) ConfigKeys() []config.Key { return config.KeysFor[Config]() }

// Start reads Config and opens the database, migrating the function's
// tables and the auth, subscription and ingest tables it checks events
// against. Ready follows the database; SMTP is not checked, because an SMTP
// outage is handled by retries, not by taking the function out.
func (n *Notifier) Start(ctx context.Context, cfg map[string]string) error {
	c, err := config.Parse[Config](cfg)
	if err != nil {
		return fmt.Errorf("notification: %w", err)
	}
	if n.lease == 0 {
		n.lease = DefaultSendLease
	}
	if c.Lease != 0 {
		n.lease = c.Lease
	}
	n.mailer = &mailer{cfg: c.SMTP, from: c.From}
	n.confirmLink, n.resetLink = c.ConfirmLink, c.ResetLink
	if c.MailpitURL != "" {
		n.checker = &Mailpit{BaseURL: c.MailpitURL}
	}
	if _, err := templates(); err != nil {
		return fmt.Errorf("notification templates: %w", err)
	}
	pool, err := n.OpenPool(ctx, c.DatabaseURL, func(ctx context.Context, p *pgxpool.Pool) error {
		return postgres.MigrateOwner(ctx, p, Name, migrations, sub.Migrate, ingest.Migrate)
	}, func(ctx context.Context, p *pgxpool.Pool) error {
		// The owners' records the facts are checked against (verify.go).
		return auth.Migrate(ctx, &postgres.Pool{Pool: p})
	})
	if err != nil {
		return fmt.Errorf("notification: %w", err)
	}
	n.pool = pool
	n.Log.Info("notification started", "smtp", c.SMTP.addr(), "query_before_retry", n.checker != nil)
	return nil
}

// email is what an event asks to send.
type email struct {
	kind   Kind
	userID string
	to     string
	locale string
	values map[string]any
}

// Handle emails what e warrants, at most once per event and, with the
// broker's retries, at least once; a LocaleChanged emails nothing and
// changes the contact's language.
func (n *Notifier) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	ctx = telemetry.FromEvent(ctx, e)
	log := n.Log.With("event_type", e.Type(), "event_id", e.ID(), "event_source", e.Source())
	if e.Type() == eventtype.LocaleChanged {
		err := n.changeLocale(ctx, log, e)
		if errors.Is(err, ErrUnverified) {
			log.WarnContext(ctx, "refused a locale change auth's records do not back; contact unchanged", "error", err)
			return nil, nil
		}
		if err != nil {
			log.WarnContext(ctx, "locale change not applied; the broker will retry", "error", err)
			return nil, err
		}
		return nil, nil
	}
	log = log.With("message_id", MessageID(e.Source(), e.ID()))
	m, err := n.compose(ctx, e)
	if errors.Is(err, ErrUnverified) {
		log.WarnContext(ctx, "refused an event its producer's records do not back; no email", "error", err)
		return nil, nil
	}
	if err != nil {
		log.WarnContext(ctx, "event not emailed", "error", err)
		return nil, err
	}
	if m == nil {
		return nil, nil
	}
	log = log.With("kind", m.kind, "user_id", m.userID)
	if err := n.deliver(ctx, log, e, *m); err != nil {
		log.WarnContext(ctx, "email not sent; the broker will retry", "error", err)
		return nil, err
	}
	return nil, nil
}

func decode[T any](e event.Event) (T, error) {
	var d T
	if err := json.Unmarshal(e.Data(), &d); err != nil {
		return d, fmt.Errorf("%w: %s data: %w", ErrBadEvent, e.Type(), err)
	}
	return d, nil
}

// kindOf maps the consumed event types to their email.
var kindOf = map[string]Kind{
	eventtype.UserRegistered:            KindConfirmEmail,
	eventtype.PasswordResetRequested:    KindPasswordReset,
	eventtype.SubscriptionActivated:     KindSubscriptionActivated,
	eventtype.PaymentFailed:             KindPaymentFailed,
	eventtype.PaymentRefunded:           KindPaymentRefunded,
	eventtype.SubscriptionRenewed:       KindSubscriptionRenewed,
	eventtype.SubscriptionRenewalFailed: KindSubscriptionRenewalFailed,
	eventtype.SubscriptionCanceled:      KindSubscriptionCanceled,
	eventtype.SubscriptionExpired:       KindSubscriptionExpired,
	eventtype.IngestionFailed:           KindIngestionFailed,
}

// ConsumedTypes lists the event types the function handles (one Trigger
// each): those it emails about and LocaleChanged.
func ConsumedTypes() []string {
	out := make([]string, 0, len(kindOf)+1)
	for t := range kindOf {
		out = append(out, t)
	}
	return append(out, eventtype.LocaleChanged)
}

// WouldEmail reports whether e warrants an email, and the Message-ID it gets;
// a test counting emails uses it for its expectations. Events of consumed
// types warrant one except a UserRegistered without a confirmation link (an
// account from an external provider, already verified) and a PaymentFailed
// for a renewal (SubscriptionRenewalFailed tells that story, with the retry
// date; one failure, one email).
func WouldEmail(e event.Event) (messageID string, ok bool, err error) {
	kind, known := kindOf[e.Type()]
	if !known {
		return "", false, nil
	}
	switch kind {
	case KindConfirmEmail:
		d, err := decode[eventtype.UserRegisteredData](e)
		if err != nil || d.ConfirmURL == "" {
			return "", false, err
		}
	case KindPaymentFailed:
		d, err := decode[eventtype.PaymentData](e)
		if err != nil || d.Purpose == "renewal" {
			return "", false, err
		}
	case KindIngestionFailed:
		d, err := decode[eventtype.IngestionData](e)
		if err != nil || d.UploaderID == "" {
			return "", false, err
		}
	}
	return MessageID(e.Source(), e.ID()), true, nil
}

// compose turns e into the email it warrants (nil for none), recording a new
// user's contact on the way.
func (n *Notifier) compose(ctx context.Context, e event.Event) (*email, error) {
	kind, ok := kindOf[e.Type()]
	if !ok {
		return nil, fmt.Errorf("%w: type %q is not consumed by %s", ErrBadEvent, e.Type(), Name)
	}
	switch kind {
	case KindConfirmEmail:
		d, err := decode[eventtype.UserRegisteredData](e)
		if err != nil {
			return nil, err
		}
		if d.UserID == "" {
			return nil, fmt.Errorf("%w: user_registered without user_id", ErrBadEvent)
		}
		if d.ConfirmURL == "" {
			// External provider verified the address: nothing to confirm.
			// The contact is the account's confirmed address in auth, not
			// the event's.
			if err := checkAddress(d.Email); err != nil {
				return nil, err
			}
			a, err := n.verifyConfirmedAccount(ctx, e, d.UserID)
			if err != nil {
				return nil, err
			}
			return nil, n.upsertContact(ctx, d.UserID, a)
		}
		a, err := n.verifyLink(ctx, e, "confirm", d.UserID, d.ConfirmURL)
		if err != nil {
			return nil, err
		}
		locale := Locale(a.locale)
		if err := n.upsertContact(ctx, d.UserID, a); err != nil {
			return nil, err
		}
		return &email{kind: kind, userID: d.UserID, to: a.email, locale: locale, values: map[string]any{
			"Email": a.email, "ConfirmURL": n.confirmLink + a.token, "ExpiresAt": formatDateTime(locale, &a.expires),
		}}, nil
	case KindPasswordReset:
		d, err := decode[eventtype.PasswordResetRequestedData](e)
		if err != nil {
			return nil, err
		}
		if d.ResetURL == "" || d.UserID == "" {
			return nil, fmt.Errorf("%w: password_reset_requested without reset_url or user_id", ErrBadEvent)
		}
		a, err := n.verifyLink(ctx, e, "reset", d.UserID, d.ResetURL)
		if err != nil {
			return nil, err
		}
		locale := Locale(a.locale)
		return &email{kind: kind, userID: d.UserID, to: a.email, locale: locale, values: map[string]any{
			"Email": a.email, "ResetURL": n.resetLink + a.token, "ExpiresAt": formatDateTime(locale, &a.expires),
		}}, nil
	case KindPaymentFailed, KindPaymentRefunded:
		d, err := decode[eventtype.PaymentData](e)
		if err != nil {
			return nil, err
		}
		if kind == KindPaymentFailed && d.Purpose == "renewal" {
			return nil, nil // see WouldEmail
		}
		c, err := n.contact(ctx, d.UserID)
		if err != nil {
			return nil, err
		}
		values := map[string]any{"Email": c.email, "Amount": formatMoney(c.locale, d.AmountMinor, d.Currency)}
		if kind == KindPaymentFailed {
			values["Reason"] = d.Reason
		}
		return &email{kind: kind, userID: d.UserID, to: c.email, locale: c.locale, values: values}, nil
	case KindIngestionFailed:
		// The uploading admin hears why; a plain S3 upload has no uploader.
		d, err := decode[eventtype.IngestionData](e)
		if err != nil || d.UploaderID == "" {
			return nil, err
		}
		f, err := n.verifyIngestionFailed(ctx, d)
		if err != nil {
			return nil, err
		}
		return &email{kind: kind, userID: f.uploader, to: f.email, locale: f.locale, values: map[string]any{
			"Email": f.email, "Key": f.key, "Reason": f.reason, "Detail": f.detail, "UploadID": d.UploadID,
		}}, nil
	default:
		d, err := decode[eventtype.SubscriptionData](e)
		if err != nil {
			return nil, err
		}
		if kind == KindSubscriptionActivated || kind == KindSubscriptionRenewed {
			if d, err = n.verifyPeriod(ctx, d); err != nil {
				return nil, err
			}
		}
		c, err := n.contact(ctx, d.UserID)
		if err != nil {
			return nil, err
		}
		l := c.locale
		values := map[string]any{"Email": c.email, "Plan": formatPlan(l, d.Plan)}
		switch kind {
		case KindSubscriptionActivated, KindSubscriptionRenewed:
			values["PeriodEnd"] = formatDate(l, d.PeriodEnd)
			values["Amount"] = formatMoney(l, d.AmountMinor, d.Currency)
		case KindSubscriptionRenewalFailed:
			values["NextRetryAt"] = formatDateTime(l, d.NextRetryAt)
			values["Reason"] = d.Reason
		case KindSubscriptionCanceled:
			values["PeriodEnd"] = formatDate(l, d.PeriodEnd)
		}
		return &email{kind: kind, userID: d.UserID, to: c.email, locale: l, values: values}, nil
	}
}

// checkAddress rejects what no SMTP server would take as a recipient; the
// error does not repeat the address.
func checkAddress(addr string) error {
	if addr == "" {
		return fmt.Errorf("%w: no email address", ErrBadEvent)
	}
	a, err := netmail.ParseAddress(addr)
	if err != nil || a.Address != addr {
		return fmt.Errorf("%w: email address is not a bare addr-spec", ErrBadEvent)
	}
	return nil
}

type contact struct {
	email  string
	locale string
}

// upsertContact records a registered user's address and language as auth's
// account a holds them. The language is taken only when a's locale version
// is not older than the contact's: a LocaleChanged applied before this
// registration (or a registration redelivered after it) keeps its language.
func (n *Notifier) upsertContact(ctx context.Context, userID string, a account) error {
	_, err := n.pool.Exec(ctx, `
		INSERT INTO notification_contact AS c (user_id, email, locale, locale_version) VALUES ($1, $2, $3, $4)
		ON CONFLICT (user_id) DO UPDATE SET email = EXCLUDED.email,
		       locale = CASE WHEN EXCLUDED.locale_version >= c.locale_version THEN EXCLUDED.locale ELSE c.locale END,
		       locale_version = GREATEST(c.locale_version, EXCLUDED.locale_version), updated_at = now()`,
		userID, a.email, Locale(a.locale), a.localeVersion)
	if err != nil {
		return fmt.Errorf("save contact of user %s: %w", userID, err)
	}
	return nil
}

func (n *Notifier) contact(ctx context.Context, userID string) (contact, error) {
	if userID == "" {
		return contact{}, fmt.Errorf("%w: no user_id", ErrBadEvent)
	}
	var c contact
	err := n.pool.QueryRow(ctx, `SELECT email, locale FROM notification_contact WHERE user_id = $1`, userID).
		Scan(&c.email, &c.locale)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, fmt.Errorf("%w: user %s", ErrNoContact, userID)
	}
	if err != nil {
		return c, fmt.Errorf("load contact of user %s: %w", userID, err)
	}
	return c, nil
}

// deliver sends m for e at most once:
//
//  1. record the intent (row 'pending') — committed before any SMTP traffic;
//  2. take a send lease on the row, counting the attempt (committed); a
//     delivery that finds the row 'sent' stops here, one that finds another
//     delivery's lease returns ErrInProgress;
//  3. if an earlier attempt was counted, its outcome is unknown (it may have
//     crashed after the server accepted the message): ask the mail store for
//     the Message-ID, and if it is there, only mark the row sent;
//  4. send; on an SMTP error release the lease and return the error so the
//     broker retries;
//  5. mark the row 'sent'.
//
// The only duplicate left is a crash between 4 and 5 with no mail store to
// ask; the copy then carries the same Message-ID.
func (n *Notifier) deliver(ctx context.Context, log *slog.Logger, e event.Event, m email) error {
	msgID := MessageID(e.Source(), e.ID())
	key := []any{e.Source(), e.ID()}

	content, err := Render(m.kind, m.locale, m.values)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadEvent, err)
	}
	if _, err := n.pool.Exec(ctx, `
		INSERT INTO notification_email (event_source, event_id, event_type, kind, message_id)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`,
		e.Source(), e.ID(), e.Type(), string(m.kind), msgID); err != nil {
		return fmt.Errorf("record email %s: %w", msgID, err)
	}

	var attempts int
	var created time.Time
	err = n.pool.QueryRow(ctx, `
		UPDATE notification_email
		   SET attempts = attempts + 1, lease_until = now() + $3 * interval '1 millisecond'
		 WHERE event_source = $1 AND event_id = $2 AND state = 'pending'
		   AND (lease_until IS NULL OR lease_until < now())
		RETURNING attempts, created_at`,
		append(key, n.lease.Milliseconds())...).Scan(&attempts, &created)
	if errors.Is(err, pgx.ErrNoRows) {
		var state string
		if err := n.pool.QueryRow(ctx, `SELECT state FROM notification_email WHERE event_source = $1 AND event_id = $2`,
			key...).Scan(&state); err != nil {
			return fmt.Errorf("read email %s: %w", msgID, err)
		}
		if state == "sent" {
			log.InfoContext(ctx, "email already sent; duplicate event ignored")
			return nil
		}
		return fmt.Errorf("email %s: %w", msgID, ErrInProgress)
	}
	if err != nil {
		return fmt.Errorf("lease email %s: %w", msgID, err)
	}

	if attempts > 1 {
		if n.checker == nil {
			log.WarnContext(ctx, "sending again after an unconfirmed attempt; a copy with the same Message-ID may exist", "attempt", attempts)
		} else {
			found, err := n.checker.Delivered(ctx, msgID)
			if err != nil {
				n.release(ctx, log, key, err)
				return fmt.Errorf("ask the mail store for %s before sending again: %w", msgID, err)
			}
			if found {
				if err := n.markSent(ctx, key); err != nil {
					return fmt.Errorf("email %s: %w", msgID, err)
				}
				log.InfoContext(ctx, "email found in the mail store after an unconfirmed attempt; not sent again", "attempt", attempts)
				return nil
			}
		}
	}

	if err := n.mailer.send(ctx, outgoing{to: m.to, messageID: msgID, date: created, content: content, kind: m.kind}); err != nil {
		n.release(ctx, log, key, err)
		return fmt.Errorf("email %s (%s), attempt %d: %w", msgID, m.kind, attempts, err)
	}
	if n.afterAccept != nil {
		if err := n.afterAccept(); err != nil {
			return err
		}
	}
	if err := n.markSent(ctx, key); err != nil {
		return fmt.Errorf("email %s accepted by the server: %w", msgID, err)
	}
	log.InfoContext(ctx, "email sent", "attempt", attempts)
	return nil
}

func (n *Notifier) markSent(ctx context.Context, key []any) error {
	// WithoutCancel: the server has the message; a cancelled request must not
	// leave the row pending when the update can still be made.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, err := n.pool.Exec(ctx, `
		UPDATE notification_email SET state = 'sent', sent_at = now(), lease_until = NULL, last_error = NULL
		 WHERE event_source = $1 AND event_id = $2`, key...); err != nil {
		return fmt.Errorf("mark sent: %w", err)
	}
	return nil
}

// release gives the lease back after a failed attempt, keeping the reason
// for operators (an SMTP error text holds no message content).
func (n *Notifier) release(ctx context.Context, log *slog.Logger, key []any, cause error) {
	msg := cause.Error()
	if len(msg) > 500 {
		msg = msg[:500]
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := n.pool.Exec(ctx, `
		UPDATE notification_email SET lease_until = NULL, last_error = $3
		 WHERE event_source = $1 AND event_id = $2 AND state = 'pending'`,
		append(key, strings.ToValidUTF8(msg, "?"))...); err != nil {
		log.WarnContext(ctx, "release send lease", "error", err)
	}
}
