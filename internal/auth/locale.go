package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/jackc/pgx/v5"

	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/outbox"
	"github.com/overture-music/overture/internal/postgres"
	"github.com/overture-music/overture/internal/problem"
)

// updateMe changes the account of the access token: today its language
// (PATCH /v1/auth/me {"locale":"ru"}), the one emails are written in. The
// account's row is what the notification service reads for the links it
// mails (confirm, reset); the change is announced as LocaleChanged, written
// through the outbox in the transaction that makes it, for the emails it
// writes from its own contacts (subscription, payment). See docs/auth.md,
// "The account's language". Anything but "en" or "ru" is refused and changes
// nothing. The answer is the account, as GET /v1/auth/me gives it.
func (s *Service) updateMe(w http.ResponseWriter, r *http.Request) {
	c, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	var req struct {
		Locale *string `json:"locale"`
	}
	if !s.read(w, r, &req) {
		return
	}
	if req.Locale == nil {
		s.fail(w, r, problem.BadRequest(`nothing to change: send {"locale": "en" | "ru"}`))
		return
	}
	if *req.Locale != "en" && *req.Locale != "ru" {
		s.fail(w, r, problem.New(http.StatusBadRequest, "invalid-locale", fmt.Sprintf(`locale must be "en" or "ru", not %q`, truncate(*req.Locale, 16))))
		return
	}
	version, err := setLocale(r.Context(), s.pool, c.Subject, *req.Locale)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	if version > 0 {
		s.Log.InfoContext(r.Context(), "locale changed", "user_id", c.Subject, "locale", *req.Locale, "locale_version", version)
	}
	s.me(w, r)
}

// setLocale sets the locale of account id and, in the same transaction,
// writes LocaleChanged with the account's new locale_version, which it
// returns. Setting the locale the account already has changes nothing and
// announces nothing (version 0); so does an account that no longer exists.
// The row lock of the UPDATE orders concurrent changes: the one that
// commits last has the highest version.
func setLocale(ctx context.Context, pool *postgres.Pool, id, locale string) (version int64, err error) {
	err = postgres.InTx(ctx, pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `
			UPDATE auth_account SET locale = $2, locale_version = locale_version + 1, updated_at = now()
			 WHERE id::text = $1 AND locale IS DISTINCT FROM $2
			RETURNING locale_version`, id, locale).Scan(&version)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("update locale: %w", err)
		}
		e, err := newEvent(eventtype.LocaleChanged, id, eventtype.LocaleChangedData{UserID: id, Locale: locale, Version: version})
		if err != nil {
			return err
		}
		return outbox.Write(ctx, tx, e)
	})
	return version, err
}
