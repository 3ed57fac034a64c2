package auth

import (
	"fmt"
	"net/http"

	"github.com/overture-music/overture/internal/problem"
)

// updateMe changes the account of the access token: today its language
// (PATCH /v1/auth/me {"locale":"ru"}), the one emails are written in. The
// account's row is what the notification service reads for the links it
// mails (confirm, reset); see docs/auth.md, "The account's language".
// Anything but "en" or "ru" is refused and changes nothing. The answer is
// the account, as GET /v1/auth/me gives it.
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
	tag, err := s.pool.Exec(r.Context(), `UPDATE auth_account SET locale = $2, updated_at = now() WHERE id::text = $1 AND locale IS DISTINCT FROM $2`, c.Subject, *req.Locale)
	if err != nil {
		s.internal(w, r, fmt.Errorf("update locale: %w", err))
		return
	}
	if tag.RowsAffected() > 0 {
		s.Log.InfoContext(r.Context(), "locale changed", "user_id", c.Subject, "locale", *req.Locale)
	}
	s.me(w, r)
}
