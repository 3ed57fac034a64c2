package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/overture-music/overture/internal/problem"
)

// The browser flow of a provider sign-in. A browser that follows the
// provider's redirect to the callback must not be answered with tokens as
// JSON (it would show them as a page), and long-lived tokens must never be
// put in a URL (history, logs, Referer). So a web app starts the flow with
// return_to, one of its own pages on the public origin; the callback then
// redirects there with a one-time code in the fragment (never sent to a
// server), and the page exchanges the code for tokens with a POST:
//
//	GET  /v1/auth/oauth/{provider}/start?return_to=/signin
//	 …provider…
//	GET  /v1/auth/oauth/{provider}/callback → 303 /signin#oauth_code=oac_…
//	POST /v1/auth/oauth/exchange {"code":"oac_…"} → tokens
//
// The code works once, for codeTTL, and only in the browser that completed
// the callback (a cookie scoped to the exchange path binds it). A refusal
// after the state is known goes back to return_to as
// #oauth_error=<slug>&detail=…. Without return_to the callback answers JSON
// as before, for API clients.

// KindOAuthCode is the prefix of the one-time code of the browser flow.
const KindOAuthCode = "oac"

// codeTTL bounds the time between the callback and the exchange: a page
// load.
const codeTTL = time.Minute

// codeCookie binds a code to the browser the callback redirected.
const codeCookie = "overture_oauth_code"

// exchangePath is the route of the exchange (and the code cookie's path).
const exchangePath = "/v1/auth/oauth/exchange"

// maxReturnTo bounds return_to (it is stored with the state).
const maxReturnTo = 512

// codeRecord is what a code stands for, stored under the code's hash and
// taken with GETDEL, so a code works once. No token is minted before the
// exchange.
type codeRecord struct {
	Account  string `json:"a"`
	Provider string `json:"p"`
	Binding  string `json:"b"` // SHA-256 of the code cookie's value
}

func codeKey(h [32]byte) string { return "auth:oauthcode:" + hex.EncodeToString(h[:]) }

var errReturnTo = errors.New("return_to must be a page of this site: a path such as /signin, or a URL on the public origin")

// returnTo checks return_to against the public origin and returns the path
// (with its query) to redirect to; "" for none.
func (s *Service) returnTo(raw string) (string, error) {
	if raw == "" {
		return "", nil
	}
	if len(raw) > maxReturnTo || strings.ContainsAny(raw, "\\\x00\r\n\t") {
		return "", errReturnTo
	}
	u, err := url.Parse(raw)
	if err != nil || u.Fragment != "" || u.User != nil || u.Opaque != "" {
		return "", errReturnTo
	}
	if u.IsAbs() || u.Host != "" {
		base, err := url.Parse(s.cfg.baseURL)
		if err != nil || !strings.EqualFold(u.Scheme, base.Scheme) || !strings.EqualFold(u.Host, base.Host) {
			return "", errReturnTo
		}
	}
	if !strings.HasPrefix(u.Path, "/") || strings.HasPrefix(u.Path, "//") || strings.HasPrefix(u.Path, "/v1/") {
		return "", errReturnTo
	}
	return u.RequestURI(), nil
}

// appURL is path (and query) on the public origin.
func (s *Service) appURL(path string) string {
	return strings.TrimRight(s.cfg.baseURL, "/") + path
}

// webSignIn ends a browser flow that signed account in: a one-time code,
// its binding cookie, and a redirect to return_to with the code in the
// fragment.
func (s *Service) webSignIn(w http.ResponseWriter, r *http.Request, returnTo, provider string, account *Account) {
	code := NewSecret(KindOAuthCode)
	binding := NewSecret("ocb")
	bh := sha256.Sum256([]byte(binding))
	body, _ := json.Marshal(codeRecord{Account: account.ID, Provider: provider, Binding: hex.EncodeToString(bh[:])})
	h, _ := ParseSecret(KindOAuthCode, code)
	if err := s.rdb.Set(r.Context(), codeKey(h), body, codeTTL).Err(); err != nil {
		s.internal(w, r, fmt.Errorf("store oauth code: %w", err))
		return
	}
	http.SetCookie(w, &http.Cookie{Name: codeCookie, Value: binding, Path: exchangePath, MaxAge: int(codeTTL / time.Second),
		HttpOnly: true, Secure: s.cfg.secureCookie, SameSite: http.SameSiteLaxMode})
	countOutcome(r.URL.Path, "")
	s.Log.InfoContext(r.Context(), "login code issued", "user_id", account.ID, "method", provider)
	redirectFragment(w, r, s.appURL(returnTo), url.Values{"oauth_code": {code}})
}

// webFail answers a refused browser flow: the refusal is logged and counted
// as fail does, and the browser goes back to the app's page with the
// problem's slug and detail in the fragment.
func (s *Service) webFail(w http.ResponseWriter, r *http.Request, returnTo string, p *problem.Problem, attrs ...any) {
	countOutcome(r.URL.Path, p.Type)
	args := append([]any{"path", r.URL.Path, "status", p.Status, "problem", p.Type, "detail", p.Detail, "remote", clientIP(r)}, attrs...)
	s.Log.WarnContext(r.Context(), "auth request refused", args...)
	slug := strings.TrimPrefix(p.Type, "/problems/")
	f := url.Values{"oauth_error": {slug}}
	// provider-denied quotes the redirect's error parameter, which anyone
	// can write into a link: only the slug goes back to the page.
	if slug != "provider-denied" {
		f.Set("detail", p.Detail)
	}
	redirectFragment(w, r, s.appURL(returnTo), f)
}

func redirectFragment(w http.ResponseWriter, r *http.Request, target string, f url.Values) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, target+"#"+f.Encode(), http.StatusSeeOther)
}

// browserReturnTo is where a callback sends the browser back to: the
// state's return_to; for a browser's navigation without one (a link to
// start made before return_to existed, a state that is unknown) the app's
// sign-in page; "" for an API client, which gets JSON.
func browserReturnTo(r *http.Request, returnTo string) string {
	if returnTo == "" && prefersHTML(r) {
		return "/signin"
	}
	return returnTo
}

// callbackFailer is how the callback refuses: back to the app for a
// browser flow (browserReturnTo), as a problem otherwise.
func (s *Service) callbackFailer(r *http.Request, returnTo string) func(http.ResponseWriter, *http.Request, *problem.Problem, ...any) {
	returnTo = browserReturnTo(r, returnTo)
	if returnTo == "" {
		return s.fail
	}
	return func(w http.ResponseWriter, r *http.Request, p *problem.Problem, attrs ...any) {
		if p.Status >= 500 {
			s.fail(w, r, p, attrs...)
			return
		}
		s.webFail(w, r, returnTo, p, attrs...)
	}
}

// prefersHTML reports a browser's top-level navigation (it asks for HTML
// before JSON).
func prefersHTML(r *http.Request) bool {
	accept := r.Header.Get("Accept")
	h, j := strings.Index(accept, "text/html"), strings.Index(accept, "json")
	return h >= 0 && (j < 0 || h < j)
}

// oauthExchange trades a browser flow's one-time code for tokens.
func (s *Service) oauthExchange(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Code string `json:"code"`
	}
	if !s.read(w, r, &req) {
		return
	}
	invalid := func(detail string) {
		s.fail(w, r, problem.New(http.StatusBadRequest, "invalid-code", detail))
	}
	h, err := ParseSecret(KindOAuthCode, req.Code)
	if err != nil {
		invalid("code must be the oauth_code the sign-in redirect carried")
		return
	}
	// Taken first, whatever follows: a code never works twice.
	body, err := s.rdb.GetDel(r.Context(), codeKey(h)).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		invalid("the sign-in code is unknown, expired or already used; sign in again")
		return
	case err != nil:
		s.internal(w, r, fmt.Errorf("read oauth code: %w", err))
		return
	}
	var rec codeRecord
	if err := json.Unmarshal(body, &rec); err != nil {
		s.internal(w, r, fmt.Errorf("decode oauth code: %w", err))
		return
	}
	c, err := r.Cookie(codeCookie)
	value := ""
	if err == nil {
		value = c.Value
	}
	ch := sha256.Sum256([]byte(value))
	if subtle.ConstantTimeCompare([]byte(hex.EncodeToString(ch[:])), []byte(rec.Binding)) != 1 {
		s.fail(w, r, problem.New(http.StatusBadRequest, "invalid-code", "this sign-in code was issued to another browser or its cookie is missing; sign in again"),
			"user_id", rec.Account)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: codeCookie, Path: exchangePath, MaxAge: -1, HttpOnly: true, Secure: s.cfg.secureCookie, SameSite: http.SameSiteLaxMode})
	a, ok := s.account(w, r, rec.Account, problem.New(http.StatusNotFound, "account-gone", "the account of this sign-in no longer exists"))
	if !ok {
		return
	}
	resp, err := s.issue(r.Context(), a, "")
	if err != nil {
		s.internal(w, r, err)
		return
	}
	s.Log.InfoContext(r.Context(), "login", "user_id", a.ID, "method", rec.Provider)
	answer(w, r, http.StatusOK, resp)
}
