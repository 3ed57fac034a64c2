package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/outbox"
	"github.com/overture-music/overture/internal/postgres"
	"github.com/overture-music/overture/internal/problem"
	"github.com/overture-music/overture/internal/server"
	"github.com/overture-music/overture/internal/token"
)

// TokenResponse is what login, refresh and the OAuth callback answer.
type TokenResponse struct {
	AccessToken      string `json:"access_token"`
	TokenType        string `json:"token_type"`
	ExpiresIn        int    `json:"expires_in"`
	RefreshToken     string `json:"refresh_token"`
	RefreshExpiresIn int    `json:"refresh_expires_in"`
	UserID           string `json:"user_id"`
}

// maxBody bounds an auth request body; the largest (a password reset) is far
// smaller.
const maxBody = 64 << 10

// decode reads the body into v strictly: application/json only (415
// otherwise), no members v does not have, nothing after the object, at most
// maxBody bytes. A lenient parser would let a client smuggle members a later
// version starts to honour, or a second object a proxy reads differently.
func decode(r *http.Request, v any) *problem.Problem {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return problem.New(http.StatusUnsupportedMediaType, "unsupported-media-type", "send the body as application/json")
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody+1))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return problem.BadRequest("the body must be a JSON object: " + jsonReason(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return problem.BadRequest("the body must be one JSON object with nothing after it")
	}
	return nil
}

// read decodes the JSON body into v (decode); when it cannot, it answers the
// problem and reports false.
func (s *Service) read(w http.ResponseWriter, r *http.Request, v any) bool {
	if p := decode(r, v); p != nil {
		s.fail(w, r, p)
		return false
	}
	return true
}

func jsonReason(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return "it is empty"
	case errors.As(err, &se):
		return "syntax error at byte " + strconv.FormatInt(se.Offset, 10)
	case errors.As(err, &te):
		return "field " + te.Field + " has the wrong type"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "field " + strings.TrimPrefix(err.Error(), "json: unknown field ") + " is not accepted"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Sprintf("it is cut short (at most %d bytes)", maxBody)
	}
	return "it could not be read"
}

// answer writes a successful JSON answer and counts it.
func answer(w http.ResponseWriter, r *http.Request, status int, v any) {
	countOutcome(r.URL.Path, "")
	writeJSON(w, status, v)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// clientIP is the caller's address: the socket peer, or the client a trusted
// proxy names (server.Guard, TRUSTED_PROXIES). Per-address limits key on it.
func clientIP(r *http.Request) string { return server.ClientIP(r) }

// fail writes p and logs it at warn without any request secret.
func (s *Service) fail(w http.ResponseWriter, r *http.Request, p *problem.Problem, attrs ...any) {
	countOutcome(r.URL.Path, p.Type)
	args := append([]any{"path", r.URL.Path, "status", p.Status, "problem", p.Type, "detail", p.Detail, "remote", clientIP(r)}, attrs...)
	if p.Status >= 500 {
		s.Log.ErrorContext(r.Context(), "auth request failed", args...)
	} else {
		s.Log.WarnContext(r.Context(), "auth request refused", args...)
	}
	problem.Write(w, r, p)
}

func (s *Service) internal(w http.ResponseWriter, r *http.Request, err error) {
	s.fail(w, r, problem.New(http.StatusInternalServerError, "internal", "the server failed to handle the request; it has been logged"), "error", err.Error())
}

// failErr answers a step that failed with err: p when err is the expected
// refusal known, else a 500.
func (s *Service) failErr(w http.ResponseWriter, r *http.Request, err, known error, p *problem.Problem) {
	if errors.Is(err, known) {
		s.fail(w, r, p)
		return
	}
	s.internal(w, r, err)
}

// noContent answers 204 and counts it.
func noContent(w http.ResponseWriter, r *http.Request) {
	countOutcome(r.URL.Path, "")
	w.WriteHeader(http.StatusNoContent)
}

// limited counts an attempt and answers 429 when over the limit.
func (s *Service) limited(w http.ResponseWriter, r *http.Request, l Limit, subject string) bool {
	ok, retry, err := s.limiter.Allow(r.Context(), l, subject)
	if err != nil {
		s.fail(w, r, problem.New(http.StatusServiceUnavailable, "unavailable", "rate limiter unavailable; try again shortly"), "error", err.Error())
		return true
	}
	if ok {
		return false
	}
	s.tooMany(w, r, l, retry)
	return true
}

// tooMany answers 429 with Retry-After.
func (s *Service) tooMany(w http.ResponseWriter, r *http.Request, l Limit, retry time.Duration, attrs ...any) {
	secs := int((retry + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	p := problem.New(http.StatusTooManyRequests, "rate-limited",
		fmt.Sprintf("too many attempts (%s: at most %d per %s); retry in %d s", l.Name, l.Max, l.Window, secs))
	p.Extra = map[string]any{"retry_after": secs}
	s.fail(w, r, p, append([]any{"limit", l.Name}, attrs...)...)
}

// issue signs an access token for a and, when refresh is empty, starts a new
// session.
func (s *Service) issue(ctx context.Context, a *Account, refresh string) (TokenResponse, error) {
	k, err := s.keys.Current()
	if err != nil {
		return TokenResponse{}, err
	}
	now := s.Clock.Now()
	c := &token.Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: s.cfg.issuer, Subject: a.ID, Audience: jwt.ClaimStrings{Audience},
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(s.cfg.accessTTL)),
			ID: uuid.NewString(),
		},
		Roles:              a.Roles,
		Premium:            a.Premium && (a.PremiumUntil == nil || now.Before(*a.PremiumUntil)),
		EntitlementVersion: a.EntVersion,
	}
	if c.Premium && a.PremiumUntil != nil {
		c.PremiumUntil = jwt.NewNumericDate(*a.PremiumUntil)
	}
	at, err := token.Sign(k, c)
	if err != nil {
		return TokenResponse{}, err
	}
	if refresh == "" {
		if refresh, _, err = s.sessions.Start(ctx, a.ID); err != nil {
			return TokenResponse{}, err
		}
	}
	return TokenResponse{
		AccessToken: at, TokenType: "Bearer", ExpiresIn: int(s.cfg.accessTTL / time.Second),
		RefreshToken: refresh, RefreshExpiresIn: int(s.sessions.ttl() / time.Second), UserID: a.ID,
	}, nil
}

func (s *Service) register(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Email, Password, Locale string
	}
	if !s.read(w, r, &in) {
		return
	}
	fields := map[string]string{}
	email, err := normalizeEmail(in.Email)
	if err != nil {
		fields["email"] = err.Error()
	}
	if err := checkPasswordPolicy(in.Password); err != nil {
		fields["password"] = err.Error()
	}
	locale, err := normalizeLocale(in.Locale)
	if err != nil {
		fields["locale"] = err.Error()
	}
	if len(fields) > 0 {
		s.fail(w, r, problem.Validation(fields))
		return
	}
	if s.limited(w, r, s.cfg.loginIP, "register:"+clientIP(r)) {
		return
	}
	hash, err := HashPassword(in.Password, s.Argon2)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	var id string
	err = postgres.InTx(r.Context(), s.pool, func(tx pgx.Tx) error {
		var err error
		if id, err = createAccount(r.Context(), tx, email, &hash, locale, []string{token.RoleListener}, false); err != nil {
			return err
		}
		return sendLink(r.Context(), tx, "confirm", id, s.Clock.Now().Add(s.cfg.confirmTTL), eventtype.UserRegistered, func(secret string, exp time.Time) any {
			return eventtype.UserRegisteredData{
				UserID: id, Email: email, Locale: locale, ExpiresAt: exp,
				ConfirmURL: s.cfg.baseURL + "/v1/auth/confirm?token=" + secret,
			}
		})
	})
	if err != nil {
		s.failErr(w, r, err, ErrEmailTaken, problem.New(http.StatusConflict, "email-taken", "an account with this email already exists; log in or reset the password"))
		return
	}
	s.Log.InfoContext(r.Context(), "account registered", "user_id", id)
	answer(w, r, http.StatusCreated, map[string]any{"user_id": id, "email": email, "locale": locale, "confirmed": false})
}

func (s *Service) confirm(w http.ResponseWriter, r *http.Request) {
	secret := r.URL.Query().Get("token")
	if secret == "" {
		s.fail(w, r, problem.BadRequest("the token query parameter is required"))
		return
	}
	id, ok := s.redeem(w, r, "confirm", "confirmation", secret, func(ctx context.Context, tx pgx.Tx, id string) error {
		_, err := tx.Exec(ctx, `UPDATE auth_account SET confirmed_at = coalesce(confirmed_at, now()), updated_at = now() WHERE id = $1`, id)
		return err
	})
	if !ok {
		return
	}
	s.Log.InfoContext(r.Context(), "email confirmed", "user_id", id)
	answer(w, r, http.StatusOK, map[string]any{"user_id": id, "confirmed": true})
}

// sendLink stores a new one-time link of kind for account and, in the same
// transaction, writes the event of type typ that carries it to the outbox;
// data builds that event's data from the link's secret and expiry.
func sendLink(ctx context.Context, tx pgx.Tx, kind, account string, exp time.Time, typ string, data func(secret string, exp time.Time) any) error {
	secret, exp, err := newOnetime(ctx, tx, kind, account, exp)
	if err != nil {
		return err
	}
	e, err := newEvent(typ, account, data(secret, exp))
	if err != nil {
		return err
	}
	return outbox.Write(ctx, tx, e)
}

// redeem uses the one-time link secret of kind and, in the same transaction,
// applies its effect to the link's account. A link that is unknown, used or
// expired is answered with its problem (what names the link in the detail),
// any other failure with a 500; ok is false then.
func (s *Service) redeem(w http.ResponseWriter, r *http.Request, kind, what, secret string, apply func(ctx context.Context, tx pgx.Tx, id string) error) (id string, ok bool) {
	err := postgres.InTx(r.Context(), s.pool, func(tx pgx.Tx) error {
		var err error
		if id, err = useOnetime(r.Context(), tx, kind, secret, s.Clock.Now()); err != nil {
			return err
		}
		return apply(r.Context(), tx, id)
	})
	if p := linkProblem(err, what); p != nil {
		s.fail(w, r, p)
		return "", false
	}
	if err != nil {
		s.internal(w, r, err)
		return "", false
	}
	return id, true
}

func linkProblem(err error, what string) *problem.Problem {
	switch {
	case errors.Is(err, ErrLinkUnknown):
		return problem.New(http.StatusBadRequest, what+"-invalid", "this "+what+" link is not valid")
	case errors.Is(err, ErrLinkUsed):
		return problem.New(http.StatusGone, what+"-used", "this "+what+" link was already used; links work once")
	case errors.Is(err, ErrLinkExpired):
		return problem.New(http.StatusGone, what+"-expired", "this "+what+" link has expired; request a new one")
	}
	return nil
}

func (s *Service) login(w http.ResponseWriter, r *http.Request) {
	var in struct{ Email, Password string }
	if !s.read(w, r, &in) {
		return
	}
	email, err := normalizeEmail(in.Email)
	if err != nil || in.Password == "" {
		s.fail(w, r, problem.Validation(map[string]string{"email": "a valid email is required", "password": "required"}))
		return
	}
	if s.limited(w, r, s.cfg.loginIP, clientIP(r)) || s.limited(w, r, s.cfg.loginAcct, "email:"+strings.ToLower(email)) {
		return
	}
	bad := problem.New(http.StatusUnauthorized, "invalid-credentials", "the email or the password is wrong")
	a, err := accountByEmail(r.Context(), s.pool, email)
	if errors.Is(err, ErrNoAccount) {
		_, _ = CheckPassword(in.Password, s.dummy) // same cost as a real check
		s.fail(w, r, bad)
		return
	}
	if err != nil {
		s.internal(w, r, err)
		return
	}
	if a.PasswordHash == nil {
		_, _ = CheckPassword(in.Password, s.dummy)
		s.fail(w, r, bad, "user_id", a.ID, "reason", "account has no password (external login only)")
		return
	}
	ok, err := CheckPassword(in.Password, *a.PasswordHash)
	if err != nil {
		s.internal(w, r, fmt.Errorf("account %s: %w", a.ID, err))
		return
	}
	if !ok {
		s.fail(w, r, bad, "user_id", a.ID)
		return
	}
	if a.ConfirmedAt == nil {
		s.fail(w, r, problem.New(http.StatusForbidden, "email-not-confirmed",
			"confirm your email address first: open the link we emailed you"), "user_id", a.ID)
		return
	}
	resp, err := s.issue(r.Context(), a, "")
	if err != nil {
		s.internal(w, r, err)
		return
	}
	s.Log.InfoContext(r.Context(), "login", "user_id", a.ID, "method", "password")
	answer(w, r, http.StatusOK, resp)
}

// refreshBody is the body of refresh and logout.
type refreshBody struct {
	RefreshToken string `json:"refresh_token"`
}

func (s *Service) refresh(w http.ResponseWriter, r *http.Request) {
	var in refreshBody
	if !s.read(w, r, &in) {
		return
	}
	if _, err := ParseSecret(KindRefresh, in.RefreshToken); err != nil {
		s.fail(w, r, problem.New(http.StatusBadRequest, "invalid-refresh-token", "refresh_token is missing or malformed"))
		return
	}
	rot, err := s.sessions.Rotate(r.Context(), in.RefreshToken,
		Throttle{IP: s.cfg.refreshIP, IPSubject: clientIP(r), Account: s.cfg.refreshAcct})
	var lim *LimitedError
	if errors.As(err, &lim) {
		s.tooMany(w, r, lim.Limit, lim.RetryAfter, "user_id", rot.UserID)
		return
	}
	switch {
	case errors.Is(err, ErrRefreshReused):
		s.fail(w, r, problem.New(http.StatusUnauthorized, "refresh-token-reused",
			"this refresh token was already used; for safety the whole session was ended, log in again"),
			"user_id", rot.UserID, "family", rot.FamilyID)
		return
	case errors.Is(err, ErrRefreshRevoked):
		s.fail(w, r, problem.New(http.StatusUnauthorized, "session-revoked", "this session was ended (logout or reuse); log in again"),
			"user_id", rot.UserID, "family", rot.FamilyID)
		return
	case errors.Is(err, ErrRefreshUnknown):
		s.fail(w, r, problem.New(http.StatusUnauthorized, "invalid-refresh-token", "the refresh token is unknown or expired; log in again"))
		return
	case err != nil:
		s.internal(w, r, err)
		return
	}
	a, ok := s.account(w, r, rot.UserID, problem.New(http.StatusUnauthorized, "account-gone", "the account of this session no longer exists"))
	if !ok {
		return
	}
	resp, err := s.issue(r.Context(), a, rot.Token)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	s.Log.DebugContext(r.Context(), "refresh", "user_id", a.ID, "family", rot.FamilyID, "grace", rot.Grace)
	answer(w, r, http.StatusOK, resp)
}

func (s *Service) logout(w http.ResponseWriter, r *http.Request) {
	var in refreshBody
	if !s.read(w, r, &in) {
		return
	}
	uid, err := s.sessions.Revoke(r.Context(), in.RefreshToken)
	if err != nil {
		s.failErr(w, r, err, ErrSecretFormat, problem.New(http.StatusBadRequest, "invalid-refresh-token", "refresh_token is missing or malformed"))
		return
	}
	s.Log.InfoContext(r.Context(), "logout", "user_id", uid)
	noContent(w, r)
}

// account loads the account id names for a signed-in caller; a deleted one
// is answered with gone, any other failure with a 500, and ok is false then.
func (s *Service) account(w http.ResponseWriter, r *http.Request, id string, gone *problem.Problem) (*Account, bool) {
	a, err := accountByID(r.Context(), s.pool, id)
	if err != nil {
		s.failErr(w, r, err, ErrNoAccount, gone)
		return nil, false
	}
	return a, true
}

// authenticate verifies the bearer access token.
func (s *Service) authenticate(w http.ResponseWriter, r *http.Request) (*token.Claims, bool) {
	c, err := s.verifier.Verify(r.Context(), token.Bearer(r))
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		s.fail(w, r, problem.New(http.StatusUnauthorized, "invalid-token", err.Error()), "reason", err.Error())
		return nil, false
	}
	return c, true
}

func (s *Service) logoutAll(w http.ResponseWriter, r *http.Request) {
	c, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	n, err := s.sessions.RevokeAll(r.Context(), c.Subject)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	s.Log.InfoContext(r.Context(), "logout everywhere", "user_id", c.Subject, "sessions", n)
	answer(w, r, http.StatusOK, map[string]any{"sessions_ended": n})
}

func (s *Service) forgot(w http.ResponseWriter, r *http.Request) {
	var in struct{ Email string }
	if !s.read(w, r, &in) {
		return
	}
	email, err := normalizeEmail(in.Email)
	if err != nil {
		s.fail(w, r, problem.Validation(map[string]string{"email": err.Error()}))
		return
	}
	if s.limited(w, r, s.cfg.loginIP, "forgot:"+clientIP(r)) || s.limited(w, r, s.cfg.loginAcct, "forgot:"+strings.ToLower(email)) {
		return
	}
	// The answer does not wait for the lookup: whether the account exists
	// would show in how long the answer took (an existing one costs a
	// transaction with two inserts). The work runs after the answer, the
	// same for every address up to this point. A crash in between loses the
	// link; the user asks again.
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 30*time.Second)
		defer cancel()
		if err := s.sendReset(ctx, email); err != nil {
			s.Log.ErrorContext(ctx, "password reset request failed", "error", err)
		}
	}()
	// The same answer whether or not the account exists: no enumeration.
	answer(w, r, http.StatusAccepted, map[string]any{"status": "if an account with this email exists, a reset link was sent"})
}

// sendReset emails a reset link to the account of email, if there is one.
func (s *Service) sendReset(ctx context.Context, email string) error {
	err := postgres.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		a, err := accountByEmail(ctx, tx, email)
		if err != nil {
			return err
		}
		if err := sendLink(ctx, tx, "reset", a.ID, s.Clock.Now().Add(s.cfg.resetTTL), eventtype.PasswordResetRequested, func(secret string, exp time.Time) any {
			return eventtype.PasswordResetRequestedData{
				UserID: a.ID, Email: a.Email, Locale: a.Locale, ExpiresAt: exp,
				ResetURL: s.cfg.resetLink + secret,
			}
		}); err != nil {
			return err
		}
		s.Log.InfoContext(ctx, "password reset requested", "user_id", a.ID)
		return nil
	})
	if errors.Is(err, ErrNoAccount) {
		return nil
	}
	return err
}

// Settle waits until the work that answers left running (reset links being
// written) is done. Stop calls it; tests call it before looking for a link.
func (s *Service) Settle() { s.bg.Wait() }

func (s *Service) reset(w http.ResponseWriter, r *http.Request) {
	var in struct{ Token, Password string }
	if !s.read(w, r, &in) {
		return
	}
	if err := checkPasswordPolicy(in.Password); err != nil {
		s.fail(w, r, problem.Validation(map[string]string{"password": err.Error()}))
		return
	}
	// Cheap checks first, the argon2 hash last: a made-up or used token
	// must not cost a hash, and guessing is throttled per client, per token
	// and per account.
	if s.limited(w, r, s.cfg.loginIP, "reset:"+clientIP(r)) || s.limited(w, r, s.cfg.loginAcct, "reset-token:"+in.Token) {
		return
	}
	id, err := peekOnetime(r.Context(), s.pool, "reset", in.Token, s.Clock.Now())
	if p := linkProblem(err, "reset"); p != nil {
		s.fail(w, r, p)
		return
	}
	if err != nil {
		s.internal(w, r, err)
		return
	}
	if s.limited(w, r, s.cfg.loginAcct, "reset:"+id) {
		return
	}
	hash, err := HashPassword(in.Password, s.Argon2)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	id, ok := s.redeem(w, r, "reset", "reset", in.Token, func(ctx context.Context, tx pgx.Tx, id string) error {
		// Receiving the link proves the address, so reset also confirms.
		_, err := tx.Exec(ctx, `UPDATE auth_account SET password_hash = $2, confirmed_at = coalesce(confirmed_at, now()), updated_at = now() WHERE id = $1`, id, hash)
		return err
	})
	if !ok {
		return
	}
	n, err := s.sessions.RevokeAll(r.Context(), id)
	if err != nil {
		s.Log.ErrorContext(r.Context(), "revoke sessions after password reset", "user_id", id, "error", err)
	}
	s.Log.InfoContext(r.Context(), "password reset", "user_id", id, "sessions_ended", n)
	noContent(w, r)
}

func (s *Service) me(w http.ResponseWriter, r *http.Request) {
	c, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	a, ok := s.account(w, r, c.Subject, problem.New(http.StatusNotFound, "account-gone", "the account of this token no longer exists"))
	if !ok {
		return
	}
	rows, err := s.pool.Query(r.Context(), `SELECT provider FROM auth_identity WHERE account_id = $1 ORDER BY provider`, a.ID)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	providers, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		s.internal(w, r, err)
		return
	}
	answer(w, r, http.StatusOK, map[string]any{
		"user_id": a.ID, "email": a.Email, "locale": a.Locale, "roles": a.Roles,
		"confirmed": a.ConfirmedAt != nil, "has_password": a.PasswordHash != nil,
		"premium": a.Premium, "premium_until": a.PremiumUntil, "entitlement_version": a.EntVersion,
		"providers": providers,
	})
}

func (s *Service) jwks(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/jwk-set+json")
	// Shorter than Keyring.PublishDelay, so caches see a new key before it signs.
	w.Header().Set("Cache-Control", "public, max-age=60")
	_ = json.NewEncoder(w).Encode(s.keys.JWKS())
}

func (s *Service) discovery(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	names := providerNames(s.provs)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"issuer":                                    s.cfg.issuer,
		"jwks_uri":                                  s.cfg.baseURL + "/.well-known/jwks.json",
		"token_endpoint":                            s.cfg.baseURL + "/v1/auth/refresh",
		"userinfo_endpoint":                         s.cfg.baseURL + "/v1/auth/me",
		"grant_types_supported":                     []string{"password", "refresh_token"},
		"token_endpoint_auth_methods_supported":     []string{"none"},
		"id_token_signing_alg_values_supported":     []string{"EdDSA"},
		"access_token_signing_alg_values_supported": []string{"EdDSA"},
		"subject_types_supported":                   []string{"public"},
		"claims_supported":                          []string{"iss", "sub", "aud", "exp", "iat", "jti", "roles", "premium", "premium_until", "ent_ver"},
		"overture_external_providers":               names,
		"overture_login_endpoint":                   s.cfg.baseURL + "/v1/auth/login",
	})
}
