package token

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/overture-music/overture/internal/problem"
)

type claimsKey struct{}

// WithClaims returns ctx carrying c.
func WithClaims(ctx context.Context, c *Claims) context.Context {
	return context.WithValue(ctx, claimsKey{}, c)
}

// FromContext returns the verified claims Middleware stored.
func FromContext(ctx context.Context) (*Claims, bool) {
	c, ok := ctx.Value(claimsKey{}).(*Claims)
	return c, ok
}

// Bearer extracts the token from an "Authorization: Bearer …" header.
func Bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// Middleware verifies the bearer token and stores its claims in the request
// context; a missing or invalid token gets 401 problem+json. The reason is
// logged (never the token itself).
func (v *Verifier) Middleware(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := v.Verify(r.Context(), Bearer(r))
		if err != nil {
			if log != nil && !errors.Is(err, ErrMissing) {
				log.WarnContext(r.Context(), "access token rejected", "reason", err.Error(), "path", r.URL.Path, "remote", r.RemoteAddr)
			}
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			problem.Write(w, r, problem.New(http.StatusUnauthorized, "invalid-token", err.Error()))
			return
		}
		next.ServeHTTP(w, r.WithContext(WithClaims(r.Context(), c)))
	})
}

// RequireRole answers 403 unless the verified token carries role. Use it
// inside Middleware.
func RequireRole(role string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := FromContext(r.Context())
		if !ok {
			problem.Write(w, r, problem.New(http.StatusUnauthorized, "invalid-token", ErrMissing.Error()))
			return
		}
		if !c.HasRole(role) {
			problem.Write(w, r, problem.New(http.StatusForbidden, "forbidden", "this action needs the "+role+" role"))
			return
		}
		next.ServeHTTP(w, r)
	})
}
