package notification

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"

	"github.com/overture-music/overture/internal/auth"
	"github.com/overture-music/overture/internal/eventtype"
)

// changeLocale applies a LocaleChanged: every later email to the user is
// written in the account's new language. Its Version orders the changes of
// one account (auth counts them in auth_account.locale_version):
//
//   - a version not above the contact's is a redelivery or an older change
//     that overtook a newer one, and changes nothing;
//   - a newer one is checked against auth's account, as the function checks
//     every fact it acts on: the event must come from auth, and auth must
//     have reached that version (a version from the future would pin the
//     contact's language against every real change). The contact then takes
//     the account's locale and version, which are at least the event's;
//   - a user without a contact yet (the registration not processed, an
//     admin made by `overture admin create`) gets one from the account, so
//     a registration that read the account before this change cannot put
//     the older language back (upsertContact compares versions too).
//
// The update is one statement guarded by the version, so concurrent
// deliveries of different changes leave the highest version whatever order
// they commit in.
func (n *Notifier) changeLocale(ctx context.Context, log *slog.Logger, e event.Event) error {
	d, err := decode[eventtype.LocaleChangedData](e)
	if err != nil {
		return err
	}
	if d.UserID == "" || d.Version < 1 || !slices.Contains(Locales, d.Locale) {
		return fmt.Errorf("%w: locale_changed needs user_id, a version above 0 and a locale of %v", ErrBadEvent, Locales)
	}
	log = log.With("user_id", d.UserID, "locale_version", d.Version)
	var have int64
	err = n.pool.QueryRow(ctx, `SELECT locale_version FROM notification_contact WHERE user_id = $1`, d.UserID).Scan(&have)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("load contact of user %s: %w", d.UserID, err)
	}
	if err == nil && d.Version <= have {
		log.InfoContext(ctx, "locale change already applied or overtaken by a newer one; ignored", "contact_locale_version", have)
		return nil
	}
	if e.Source() != auth.Source {
		return fmt.Errorf("%w: %s from %q, not auth", ErrUnverified, e.Type(), e.Source())
	}
	var a account
	err = n.pool.QueryRow(ctx, `SELECT email, locale, locale_version FROM auth_account WHERE id::text = $1`, d.UserID).
		Scan(&a.email, &a.locale, &a.localeVersion)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%w: auth holds no account %s", ErrUnverified, d.UserID)
	}
	if err != nil {
		return fmt.Errorf("look up account %s: %w", d.UserID, err)
	}
	if a.localeVersion < d.Version {
		return fmt.Errorf("%w: account %s is at locale version %d, the event claims %d", ErrUnverified, d.UserID, a.localeVersion, d.Version)
	}
	locale := Locale(a.locale)
	tag, err := n.pool.Exec(ctx, `
		INSERT INTO notification_contact AS c (user_id, email, locale, locale_version) VALUES ($1, $2, $3, $4)
		ON CONFLICT (user_id) DO UPDATE SET locale = EXCLUDED.locale, locale_version = EXCLUDED.locale_version, updated_at = now()
		 WHERE c.locale_version < EXCLUDED.locale_version`,
		d.UserID, a.email, locale, a.localeVersion)
	if err != nil {
		return fmt.Errorf("save locale of user %s: %w", d.UserID, err)
	}
	if tag.RowsAffected() == 0 {
		log.InfoContext(ctx, "a newer locale change was applied meanwhile; ignored")
		return nil
	}
	log.InfoContext(ctx, "contact's locale changed", "locale", locale, "account_locale_version", a.localeVersion)
	return nil
}
