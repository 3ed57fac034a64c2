package notification

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"

	"github.com/overture-music/overture/internal/auth"
	"github.com/overture-music/overture/internal/eventtype"
	sub "github.com/overture-music/overture/internal/subscription"
)

// ErrUnverified is an event whose facts the producer's own records do not
// back (a forged or stale link, a subscription that was never activated). It
// is logged and acknowledged: no email, and no retry, since retrying cannot
// make it true.
var ErrUnverified = errors.New("not backed by the producer's records")

// linkToken returns the one-time secret a link carries: what follows its last
// "token=" up to a '&' or '#'. It is only a candidate; auth's table decides.
func linkToken(link string) string {
	i := strings.LastIndex(link, "token=")
	if i < 0 {
		return ""
	}
	tok := link[i+len("token="):]
	if j := strings.IndexAny(tok, "&#"); j >= 0 {
		tok = tok[:j]
	}
	return tok
}

// account is the auth account a verified link belongs to.
type account struct {
	email, locale string
	localeVersion int64 // auth_account.locale_version of locale
	expires       time.Time
	token         string
}

// verifyLink checks a confirmation or reset event against auth's records: it
// must come from auth (source), and the token in its link must be a live,
// unused one-time secret of kind ("confirm" or "reset") that auth stored for
// the event's account. The email then goes to that account's own address,
// with a link this function builds from the token; the event's address, link
// and expiry are not used.
func (n *Notifier) verifyLink(ctx context.Context, e event.Event, kind, userID, link string) (account, error) {
	if e.Source() != auth.Source {
		return account{}, fmt.Errorf("%w: %s from %q, not auth", ErrUnverified, e.Type(), e.Source())
	}
	prefix := map[string]string{"confirm": auth.KindConfirm, "reset": auth.KindReset}[kind]
	a := account{token: linkToken(link)}
	hash, err := auth.ParseSecret(prefix, a.token)
	if err != nil {
		return account{}, fmt.Errorf("%w: the %s link carries no %s secret", ErrUnverified, kind, kind)
	}
	err = n.pool.QueryRow(ctx, `
		SELECT a.email, a.locale, a.locale_version, o.expires_at FROM auth_onetime o JOIN auth_account a ON a.id = o.account_id
		 WHERE o.hash = $1 AND o.kind = $2 AND a.id::text = $3 AND o.used_at IS NULL AND o.expires_at > now()`,
		hash[:], kind, userID).Scan(&a.email, &a.locale, &a.localeVersion, &a.expires)
	if errors.Is(err, pgx.ErrNoRows) {
		return account{}, fmt.Errorf("%w: auth holds no live %s link with this token for user %s", ErrUnverified, kind, userID)
	}
	if err != nil {
		return account{}, fmt.Errorf("look up the %s link of user %s: %w", kind, userID, err)
	}
	return a, nil
}

// verifyPeriod checks an activation or renewal against the subscription
// store: the subscription exists, belongs to the event's user and has the
// paid period recorded. The email's plan, amount and end come from the store.
func (n *Notifier) verifyPeriod(ctx context.Context, d eventtype.SubscriptionData) (eventtype.SubscriptionData, error) {
	x, paid, err := sub.PaidPeriodOf(ctx, n.pool, d.SubscriptionID, d.Period)
	if errors.Is(err, sub.ErrUnverified) {
		return d, fmt.Errorf("%w: %w", ErrUnverified, err)
	}
	if err != nil {
		return d, err
	}
	if x.UserID != d.UserID {
		return d, fmt.Errorf("%w: subscription %s is not user %s's", ErrUnverified, x.ID, d.UserID)
	}
	v := x.Data()
	v.Period, v.PeriodStart, v.PeriodEnd, v.AmountMinor = paid.Period, &paid.StartsAt, &paid.EndsAt, paid.AmountMinor
	return v, nil
}

// failedUpload is what an ingestion-failure email says, read from the
// owners' records.
type failedUpload struct {
	uploader, key, reason, detail string
	email, locale                 string
}

// verifyIngestionFailed checks a failure against the ingestion records: the
// upload exists, failed, and was made by an account auth knows. The email
// goes to that account's own address (admins made by `overture admin create`
// have one in auth even though they never registered), with the reason the
// record holds, not the event's.
func (n *Notifier) verifyIngestionFailed(ctx context.Context, d eventtype.IngestionData) (failedUpload, error) {
	var f failedUpload
	err := n.pool.QueryRow(ctx, `
		SELECT u.uploader_id, u.key, coalesce(u.reason, ''), coalesce(u.detail, ''), a.email, a.locale
		  FROM ingest_upload u JOIN auth_account a ON a.id::text = u.uploader_id
		 WHERE u.id::text = $1 AND u.state = 'failed'`, d.UploadID).
		Scan(&f.uploader, &f.key, &f.reason, &f.detail, &f.email, &f.locale)
	if errors.Is(err, pgx.ErrNoRows) {
		return f, fmt.Errorf("%w: no failed upload %s by a known account", ErrUnverified, d.UploadID)
	}
	if err != nil {
		return f, fmt.Errorf("look up upload %s: %w", d.UploadID, err)
	}
	f.locale = string(Locale(f.locale))
	return f, nil
}

// verifyConfirmedAccount checks a registration without a link (an external
// provider verified the address) against auth: it must come from auth and
// name an account whose address auth has confirmed; that address and locale
// are the contact, whatever the event says.
func (n *Notifier) verifyConfirmedAccount(ctx context.Context, e event.Event, userID string) (account, error) {
	if e.Source() != auth.Source {
		return account{}, fmt.Errorf("%w: %s from %q, not auth", ErrUnverified, e.Type(), e.Source())
	}
	var a account
	err := n.pool.QueryRow(ctx, `SELECT email, locale, locale_version FROM auth_account WHERE id::text = $1 AND confirmed_at IS NOT NULL`, userID).
		Scan(&a.email, &a.locale, &a.localeVersion)
	if errors.Is(err, pgx.ErrNoRows) {
		return account{}, fmt.Errorf("%w: auth holds no confirmed account %s", ErrUnverified, userID)
	}
	if err != nil {
		return account{}, fmt.Errorf("look up account %s: %w", userID, err)
	}
	return a, nil
}
