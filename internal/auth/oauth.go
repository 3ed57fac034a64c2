package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/redis/go-redis/v9"
	"golang.org/x/oauth2"

	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/outbox"
	"github.com/overture-music/overture/internal/postgres"
	"github.com/overture-music/overture/internal/problem"
	"github.com/overture-music/overture/internal/token"
)

// stateTTL bounds how long a user may take at the provider's login page.
const stateTTL = 10 * time.Minute

// stateCookie binds a state to the browser that started the flow, so a state
// (and its code) captured or planted elsewhere cannot be completed.
const stateCookie = "overture_oauth"

// stateRecord is what start stores in Redis under the state's hash; callback
// takes it with GETDEL, so a state works once.
type stateRecord struct {
	Provider string `json:"p"`
	Verifier string `json:"v"`           // PKCE code_verifier
	Nonce    string `json:"n,omitempty"` // OIDC nonce
	Binding  string `json:"b"`           // SHA-256 of the cookie value
	ReturnTo string `json:"r,omitempty"` // the browser flow's page (oauthweb.go)
}

func stateKey(h [32]byte) string { return "auth:oauth:" + hex.EncodeToString(h[:]) }

// StateKey is the Redis key of a state value (for fault-injection tests).
func StateKey(state string) (string, error) {
	h, err := ParseSecret(KindState, state)
	if err != nil {
		return "", err
	}
	return stateKey(h), nil
}

func (s *Service) providerFor(w http.ResponseWriter, r *http.Request) (string, provider, bool) {
	name := r.PathValue("provider")
	p, ok := s.provs[name]
	if !ok {
		detail := fmt.Sprintf("login with %q is not configured on this server", name)
		if len(s.provs) > 0 {
			detail += "; available: " + strings.Join(providerNames(s.provs), ", ")
		}
		s.fail(w, r, problem.New(http.StatusNotFound, "provider-not-configured", detail))
		return "", nil, false
	}
	return name, p, true
}

func (s *Service) oauthStart(w http.ResponseWriter, r *http.Request) {
	name, p, ok := s.providerFor(w, r)
	if !ok {
		return
	}
	returnTo, err := s.returnTo(r.URL.Query().Get("return_to"))
	if err != nil {
		s.fail(w, r, problem.New(http.StatusBadRequest, "invalid-return-to", err.Error()))
		return
	}
	state := NewSecret(KindState)
	binding := NewSecret("osb")
	rec := stateRecord{Provider: name, Verifier: oauth2.GenerateVerifier(), ReturnTo: returnTo}
	if p.oidc() {
		rec.Nonce = oauth2.GenerateVerifier()
	}
	bh := sha256.Sum256([]byte(binding))
	rec.Binding = hex.EncodeToString(bh[:])
	target, err := p.authCodeURL(r.Context(), state, rec.Verifier, rec.Nonce)
	if err != nil {
		s.fail(w, r, problem.New(http.StatusBadGateway, "provider-unavailable", name+" is not reachable right now; try again later"), "error", err.Error())
		return
	}
	body, _ := json.Marshal(rec)
	h, _ := ParseSecret(KindState, state)
	if err := s.rdb.Set(r.Context(), stateKey(h), body, stateTTL).Err(); err != nil {
		s.internal(w, r, fmt.Errorf("store oauth state: %w", err))
		return
	}
	http.SetCookie(w, &http.Cookie{Name: stateCookie, Value: binding, Path: "/v1/auth/oauth/", MaxAge: int(stateTTL / time.Second),
		HttpOnly: true, Secure: s.cfg.secureCookie, SameSite: http.SameSiteLaxMode})
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, target, http.StatusFound)
}

func (s *Service) oauthCallback(w http.ResponseWriter, r *http.Request) {
	name, p, ok := s.providerFor(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	state := q.Get("state")
	// The state is consumed first, whatever the outcome, so it never works twice.
	var rec stateRecord
	var stateErr *problem.Problem
	switch h, err := ParseSecret(KindState, state); {
	case state == "":
		stateErr = problem.New(http.StatusBadRequest, "missing-state", "the provider's redirect carries no state; start the login again")
	case err != nil:
		stateErr = problem.New(http.StatusBadRequest, "invalid-state", "the state parameter is malformed; start the login again")
	default:
		body, err := s.rdb.GetDel(r.Context(), stateKey(h)).Bytes()
		switch {
		case errors.Is(err, redis.Nil):
			stateErr = problem.New(http.StatusBadRequest, "invalid-state", "the login state is unknown, expired or already used; start the login again")
		case err != nil:
			s.internal(w, r, fmt.Errorf("read oauth state: %w", err))
			return
		default:
			if err := json.Unmarshal(body, &rec); err != nil || rec.Provider != name {
				stateErr = problem.New(http.StatusBadRequest, "invalid-state", "the login state belongs to another provider; start the login again")
			}
		}
	}
	fail := s.callbackFailer(r, rec.ReturnTo)
	if e := q.Get("error"); e != "" {
		fail(w, r, problem.New(http.StatusUnauthorized, "provider-denied",
			fmt.Sprintf("%s did not authorize the login: %s", name, truncate(e, 64))), "provider", name)
		return
	}
	if stateErr != nil {
		fail(w, r, stateErr, "provider", name)
		return
	}
	c, err := r.Cookie(stateCookie)
	ch := sha256.Sum256([]byte(func() string {
		if err != nil {
			return ""
		}
		return c.Value
	}()))
	if err != nil || subtle.ConstantTimeCompare([]byte(hex.EncodeToString(ch[:])), []byte(rec.Binding)) != 1 {
		fail(w, r, problem.New(http.StatusBadRequest, "state-mismatch", "this login was started in another browser or its cookie is missing; start the login again"), "provider", name)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: stateCookie, Path: "/v1/auth/oauth/", MaxAge: -1, HttpOnly: true, Secure: s.cfg.secureCookie, SameSite: http.SameSiteLaxMode})
	if q.Get("code") == "" {
		fail(w, r, problem.BadRequest("the provider's redirect carries no code"), "provider", name)
		return
	}
	prof, err := p.complete(r.Context(), q, rec)
	if err != nil {
		fail(w, r, callbackProblem(name, err), "provider", name, "error", err.Error())
		return
	}
	a, created, err := s.linkOrCreate(r.Context(), name, prof)
	if errors.Is(err, errUnverifiedEmail) {
		fail(w, r, problem.New(http.StatusUnprocessableEntity, "email-not-verified",
			name+" did not share a verified email address, which a new Overture account needs"), "provider", name)
		return
	}
	if errors.Is(err, errNotLinkable) {
		fail(w, r, problem.New(http.StatusConflict, "account-exists",
			"an Overture account already uses this email address and cannot be signed into with "+name+"; sign in with its password"), "provider", name)
		return
	}
	if err != nil {
		s.internal(w, r, err)
		return
	}
	if rt := browserReturnTo(r, rec.ReturnTo); rt != "" {
		s.webSignIn(w, r, rt, name, a)
		return
	}
	resp, err := s.issue(r.Context(), a, "")
	if err != nil {
		s.internal(w, r, err)
		return
	}
	s.Log.InfoContext(r.Context(), "login", "user_id", a.ID, "method", name, "created", created)
	answer(w, r, http.StatusOK, resp)
}

func callbackProblem(name string, err error) *problem.Problem {
	var ee *exchangeError
	switch {
	case errors.As(err, &ee):
		return problem.New(http.StatusUnauthorized, "provider-exchange-failed", ee.Error())
	case errors.Is(err, errNonce):
		return problem.New(http.StatusUnauthorized, "nonce-mismatch", "the ID token's nonce does not match this login; start again")
	case errors.Is(err, errIDToken), errors.Is(err, errNoIDToken):
		return problem.New(http.StatusUnauthorized, "id-token-invalid", name+" returned an ID token that failed verification")
	case errors.Is(err, errNoDeviceID):
		return problem.BadRequest("the VK ID redirect carries no device_id")
	case errors.Is(err, errDiscovery):
		return problem.New(http.StatusBadGateway, "provider-unavailable", name+" is not reachable right now; try again later")
	case errors.Is(err, errProfile):
		return problem.New(http.StatusBadGateway, "provider-profile-failed", "could not read your profile from "+name)
	}
	return problem.New(http.StatusBadGateway, "provider-failed", "the login with "+name+" failed; try again")
}

var (
	errUnverifiedEmail = errors.New("provider gave no verified email")
	errNotLinkable     = errors.New("the account with this email may not be linked to this provider")
)

// localProvider is `make run`'s local identity provider. It verifies no
// email address (anyone may sign up there with any address), so its
// identities never link to an existing account by email: it signs into
// accounts it created, and nothing else.
const localProvider = "local"

// linksByEmail reports whether an identity of prov that asserts a verified
// email may be linked to the existing account a with that email. Never for
// the local provider (it verifies no email); never into an admin account
// (an admin signs in with the password `overture admin create` set, so that
// one provider's mistake is not an admin takeover).
func linksByEmail(prov string, a *Account) bool {
	return prov != localProvider && !slices.Contains(a.Roles, token.RoleAdmin)
}

// linkOrCreate finds the account linked to (provider, subject); else links
// the account with the provider's verified email (when linksByEmail allows);
// else creates one.
//
// Linking into an account whose email was never confirmed also drops its
// password: whoever registered it had not proven the address, and the provider
// just proved it belongs to someone else (pre-registration takeover).
func (s *Service) linkOrCreate(ctx context.Context, prov string, p profile) (*Account, bool, error) {
	a, created, err := s.linkOrCreateOnce(ctx, prov, p)
	var pe *pgconn.PgError
	if errors.Is(err, ErrEmailTaken) || (errors.As(err, &pe) && pe.Code == "23505") {
		// A concurrent first login of the same person (two tabs) created the
		// account or the link first; the second attempt finds it.
		return s.linkOrCreateOnce(ctx, prov, p)
	}
	return a, created, err
}

func (s *Service) linkOrCreateOnce(ctx context.Context, prov string, p profile) (*Account, bool, error) {
	var id string
	var created bool
	err := postgres.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT account_id::text FROM auth_identity WHERE provider = $1 AND subject = $2`, prov, p.Subject).Scan(&id)
		if err == nil {
			return nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("read identity: %w", err)
		}
		if p.Email == "" || !p.EmailVerified {
			return errUnverifiedEmail
		}
		email, err := normalizeEmail(p.Email)
		if err != nil {
			return errUnverifiedEmail
		}
		a, err := accountByEmail(ctx, tx, email)
		switch {
		case errors.Is(err, ErrNoAccount):
			if id, err = createAccount(ctx, tx, email, nil, "en", []string{token.RoleListener}, true); err != nil {
				return err
			}
			created = true
			e, err := newEvent(eventtype.UserRegistered, id, eventtype.UserRegisteredData{UserID: id, Email: email, Locale: "en", Provider: prov})
			if err != nil {
				return err
			}
			if err := outbox.Write(ctx, tx, e); err != nil {
				return err
			}
		case err != nil:
			return err
		case !linksByEmail(prov, a):
			return errNotLinkable
		default:
			id = a.ID
			if a.ConfirmedAt == nil {
				if _, err := tx.Exec(ctx, `UPDATE auth_account SET confirmed_at = now(), password_hash = NULL, updated_at = now() WHERE id = $1`, id); err != nil {
					return fmt.Errorf("confirm linked account: %w", err)
				}
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO auth_identity (provider, subject, account_id, email) VALUES ($1, $2, $3, $4)`,
			prov, p.Subject, id, email); err != nil {
			return fmt.Errorf("link identity: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	a, err := accountByID(ctx, s.pool, id)
	return a, created, err
}
