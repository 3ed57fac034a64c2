// Package idp holds identity providers that run here: the local OpenID
// Connect provider `make run` starts so the whole redirect login works on a
// laptop without the internet, and stand-ins for Google, Yandex ID and VK ID
// that tests drive through the real HTTP redirect flow.
//
// One server, three flavours, because the three real providers share the
// authorization-code shape and differ in details a client must get right:
//
//   - FlavorOIDC (Google, the local IdP): discovery, JWKS, RS256 ID tokens with
//     the nonce, userinfo with Bearer; PKCE optional but checked when sent.
//   - FlavorYandex: code + optional PKCE, no ID token; the profile is
//     GET /info?format=json with "Authorization: OAuth <token>" (Bearer is
//     refused); errors are {"error","error_description"} JSON.
//   - FlavorVK (VK ID, OAuth 2.1): PKCE mandatory (S256), the redirect carries
//     device_id, and the exchange must send device_id and state back; profile
//     is POST /oauth2/user_info with access_token and client_id.
//
// Every flavour checks redirect URIs by exact string match, makes codes
// single-use and short-lived, and answers invalid_grant for a wrong verifier,
// an expired or replayed code.
package idp

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/overture-music/overture/internal/config"
)

// Flavor selects which provider the server behaves like.
type Flavor int

// Flavours.
const (
	FlavorOIDC Flavor = iota
	FlavorYandex
	FlavorVK
)

func (f Flavor) String() string {
	return [...]string{"oidc", "yandex", "vk"}[f]
}

// Client is a registered OAuth client.
type Client struct {
	ID, Secret   string
	RedirectURIs []string
}

// User is who logs in.
type User struct {
	Subject       string
	Email         string
	EmailVerified bool
}

// Config configures a Server.
type Config struct {
	Flavor  Flavor
	Issuer  string // the server's own base URL (OIDC issuer)
	Clients []Client
	// AutoLogin, when set, authorizes every request as this user without the
	// HTML login page (tests follow the redirects with a plain http.Client).
	AutoLogin *User
	// Local, when set, is the provider's own user store: the HTML page signs
	// in its accounts with their password and signs up new ones (the local
	// IdP of `make run`). A provider with neither AutoLogin nor Local
	// authorizes nobody.
	Local *LocalUsers
	// Deny makes the provider answer error=access_denied (the user said no).
	Deny bool
	// CodeTTL is how long a code can be exchanged (default 1 min).
	CodeTTL time.Duration
}

type grant struct {
	client, redirect, challenge, method, nonce, state, device string
	user                                                      User
	expires                                                   time.Time
}

// Server is a provider; it is an http.Handler.
type Server struct {
	mu     sync.Mutex
	cfg    Config
	key    *rsa.PrivateKey
	kid    string
	codes  map[string]*grant
	tokens map[string]User
	mux    *http.ServeMux
	// Exchanges counts token requests (tests assert a refused flow made none).
	Exchanges int
}

// New returns a provider.
func New(cfg Config) (*Server, error) {
	if cfg.CodeTTL == 0 {
		cfg.CodeTTL = time.Minute
	}
	s := &Server{cfg: cfg, codes: map[string]*grant{}, tokens: map[string]User{}, mux: http.NewServeMux()}
	if cfg.Flavor == FlavorOIDC {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, fmt.Errorf("idp: signing key: %w", err)
		}
		s.key, s.kid = k, "idp-"+randString(6)
		s.mux.HandleFunc("GET /.well-known/openid-configuration", s.discovery)
		s.mux.HandleFunc("GET /jwks", s.jwks)
		s.mux.HandleFunc("GET /authorize", s.authorize)
		s.mux.HandleFunc("POST /authorize", s.authorize)
		s.mux.HandleFunc("POST /token", s.token)
		s.mux.HandleFunc("GET /userinfo", s.userinfo)
	}
	if cfg.Flavor == FlavorYandex {
		s.mux.HandleFunc("GET /authorize", s.authorize)
		s.mux.HandleFunc("POST /authorize", s.authorize)
		s.mux.HandleFunc("POST /token", s.token)
		s.mux.HandleFunc("GET /info", s.yandexInfo)
	}
	if cfg.Flavor == FlavorVK {
		s.mux.HandleFunc("GET /authorize", s.authorize)
		s.mux.HandleFunc("POST /authorize", s.authorize)
		s.mux.HandleFunc("POST /oauth2/auth", s.token)
		s.mux.HandleFunc("POST /oauth2/user_info", s.vkUserInfo)
	}
	return s, nil
}

// NewLocal is the provider `make run` starts: OIDC, an HTML page where the
// provider's own accounts (users) sign in with their password and new ones
// sign up, one client whose redirect URI is publicBaseURL +
// /v1/auth/oauth/local/callback. Serve it on issuer's address (127.0.0.1:8089
// by convention) and give auth LOCAL_OIDC_ISSUER=issuer. A nil users keeps
// the accounts in memory.
//
// It used to sign in as any email typed into the page, which made any
// Overture account, admins included, one form away; now it asserts only
// accounts created here, and auth links none of them to an existing account.
func NewLocal(issuer, clientID, clientSecret, publicBaseURL string, users *LocalUsers) (*Server, error) {
	if users == nil {
		users, _ = OpenLocalUsers("")
	}
	return New(Config{Flavor: FlavorOIDC, Issuer: strings.TrimRight(issuer, "/"), Local: users, Clients: []Client{{
		ID: clientID, Secret: clientSecret,
		RedirectURIs: []string{strings.TrimRight(publicBaseURL, "/") + "/v1/auth/oauth/local/callback"},
	}}})
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// SetIssuer sets the base URL once the listener is known.
func (s *Server) SetIssuer(u string) {
	s.mu.Lock()
	s.cfg.Issuer = strings.TrimRight(u, "/")
	s.mu.Unlock()
}

// Update changes the configuration under the lock (tests switch users, deny).
func (s *Server) Update(f func(*Config)) {
	s.mu.Lock()
	f(&s.cfg)
	s.mu.Unlock()
}

// ExpireCodes makes every issued, unexchanged code expired.
func (s *Server) ExpireCodes() {
	s.mu.Lock()
	for _, g := range s.codes {
		g.expires = time.Now().Add(-time.Second)
	}
	s.mu.Unlock()
}

func (s *Server) issuer() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg.Issuer
}

func (s *Server) discovery(w http.ResponseWriter, _ *http.Request) {
	iss := s.issuer()
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer": iss, "authorization_endpoint": iss + "/authorize", "token_endpoint": iss + "/token",
		"userinfo_endpoint": iss + "/userinfo", "jwks_uri": iss + "/jwks",
		"response_types_supported": []string{"code"}, "subject_types_supported": []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"}, "scopes_supported": []string{"openid", "email", "profile"},
		"code_challenge_methods_supported":      []string{"plain", "S256"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "client_secret_basic"},
		"claims_supported":                      []string{"sub", "email", "email_verified", "iss", "aud", "exp", "iat", "nonce"},
	})
}

func (s *Server) jwks(w http.ResponseWriter, _ *http.Request) {
	pub := s.key.PublicKey
	writeJSON(w, http.StatusOK, map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "alg": "RS256", "use": "sig", "kid": s.kid,
		"n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
	}}})
}

var page = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Overture local login</title>
<style>body{font-family:system-ui,sans-serif;max-width:28rem;margin:4rem auto}input,button{font-size:1rem;padding:.4rem}</style></head>
<body><h1>Local identity provider</h1>
<p>This stands in for Google on this machine. Sign in with an account of this
provider, or create one: it signs you into a new Overture account, never into
an existing one.</p>
{{if .Error}}<p role="alert"><strong>{{.Error}}</strong></p>{{end}}
<form method="post" action="authorize">
{{range $k, $v := .Params}}<input type="hidden" name="{{$k}}" value="{{$v}}">{{end}}
<p><label>Email <input type="email" name="login_email" value="{{.Email}}" required autofocus></label></p>
<p><label>Password <input type="password" name="login_password" required minlength="8"></label></p>
<button type="submit" name="action" value="login">Sign in</button>
<button type="submit" name="action" value="signup">Create account</button>
</form></body></html>`))

// localFields are the page's own form fields (not passed back as hidden).
var localFields = map[string]bool{"login_email": true, "login_password": true, "action": true}

// localLogin answers the page's form: the user to authorize, or the message
// and status to show the page again with.
func localLogin(users *LocalUsers, q url.Values) (User, string, int) {
	email, pass := strings.TrimSpace(q.Get("login_email")), q.Get("login_password")
	if q.Get("action") == "signup" {
		u, err := users.SignUp(email, pass)
		switch {
		case errors.Is(err, ErrLocalUserExists):
			return User{}, "An account with this email already exists here; sign in with its password.", http.StatusConflict
		case errors.Is(err, ErrLocalBadEmail), errors.Is(err, ErrLocalWeakPass):
			return User{}, "Cannot create the account: " + err.Error() + ".", http.StatusBadRequest
		case err != nil:
			return User{}, "Cannot create the account right now.", http.StatusInternalServerError
		}
		return u, "", 0
	}
	if u, ok := users.Check(email, pass); ok {
		return u, "", 0
	}
	// The same answer for an unknown email and a wrong password.
	return User{}, "Wrong email or password. Only accounts created on this page can sign in here.", http.StatusUnauthorized
}

func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	q := r.Form
	s.mu.Lock()
	cfg := s.cfg
	s.mu.Unlock()
	ci := slices.IndexFunc(cfg.Clients, func(c Client) bool { return c.ID == q.Get("client_id") })
	if ci < 0 {
		http.Error(w, "Error 401: invalid_client\nThe OAuth client was not found.", http.StatusUnauthorized)
		return
	}
	redirect := q.Get("redirect_uri")
	// Exact string match (RFC 9700): no prefix, no normalisation. The
	// provider shows an error page and does not redirect anywhere.
	if !slices.Contains(cfg.Clients[ci].RedirectURIs, redirect) {
		http.Error(w, "Error 400: redirect_uri_mismatch\nThe redirect URI in the request does not match the ones registered for the client.", http.StatusBadRequest)
		return
	}
	back := func(v url.Values) {
		u, _ := url.Parse(redirect)
		qs := u.Query()
		for k, vs := range v {
			qs[k] = vs
		}
		if st := q.Get("state"); st != "" {
			qs.Set("state", st)
		}
		u.RawQuery = qs.Encode()
		http.Redirect(w, r, u.String(), http.StatusFound)
	}
	if q.Get("response_type") != "code" {
		back(url.Values{"error": {"unsupported_response_type"}})
		return
	}
	method := q.Get("code_challenge_method")
	challenge := q.Get("code_challenge")
	if cfg.Flavor == FlavorVK && (challenge == "" || !strings.EqualFold(method, "S256")) {
		back(url.Values{"error": {"invalid_request"}, "error_description": {"code_challenge with S256 is required"}})
		return
	}
	if cfg.Flavor == FlavorOIDC && !slices.Contains(strings.Fields(q.Get("scope")), "openid") {
		back(url.Values{"error": {"invalid_scope"}, "error_description": {"openid scope is required"}})
		return
	}
	if cfg.Deny {
		back(url.Values{"error": {"access_denied"}, "error_description": {"The user denied access"}})
		return
	}
	var user User
	switch {
	case cfg.AutoLogin != nil:
		user = *cfg.AutoLogin
	case cfg.Local != nil:
		show := func(status int, msg string) {
			params := map[string]string{}
			for k := range q {
				if !localFields[k] {
					params[k] = q.Get(k)
				}
			}
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("Cache-Control", "no-store")
			// The page's one inline <style>; no scripts, forms post only here.
			w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
			w.WriteHeader(status)
			_ = page.Execute(w, map[string]any{"Params": params, "Error": msg, "Email": q.Get("login_email")})
		}
		if r.Method != http.MethodPost || q.Get("login_email") == "" {
			show(http.StatusOK, "")
			return
		}
		var msg string
		var status int
		if user, msg, status = localLogin(cfg.Local, q); msg != "" {
			show(status, msg)
			return
		}
	default:
		http.Error(w, "this stand-in has no user to sign in (set Config.AutoLogin)", http.StatusServiceUnavailable)
		return
	}
	code := randString(24)
	g := &grant{client: cfg.Clients[ci].ID, redirect: redirect, challenge: challenge, method: method,
		nonce: q.Get("nonce"), state: q.Get("state"), user: user, expires: time.Now().Add(cfg.CodeTTL)}
	out := url.Values{"code": {code}}
	if cfg.Flavor == FlavorVK {
		g.device = randString(16)
		out.Set("device_id", g.device)
		out.Set("type", "code_v2")
		out.Set("expires_in", "600")
	}
	s.mu.Lock()
	s.codes[code] = g
	s.mu.Unlock()
	back(out)
}

func tokenError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		tokenError(w, http.StatusBadRequest, "invalid_request", "malformed form")
		return
	}
	f := r.PostForm
	s.mu.Lock()
	s.Exchanges++
	cfg := s.cfg
	g, ok := s.codes[f.Get("code")]
	delete(s.codes, f.Get("code")) // single use: a replayed code finds nothing
	s.mu.Unlock()
	id, secret, basic := r.BasicAuth()
	if !basic {
		id, secret = f.Get("client_id"), f.Get("client_secret")
	}
	ci := slices.IndexFunc(cfg.Clients, func(c Client) bool { return c.ID == id })
	if ci < 0 || (cfg.Flavor != FlavorVK && cfg.Clients[ci].Secret != "" && cfg.Clients[ci].Secret != secret) {
		tokenError(w, http.StatusUnauthorized, "invalid_client", "Client authentication failed")
		return
	}
	if f.Get("grant_type") != "authorization_code" {
		tokenError(w, http.StatusBadRequest, "unsupported_grant_type", "only authorization_code")
		return
	}
	expired := map[Flavor]string{FlavorOIDC: "Bad Request", FlavorYandex: "Code has expired", FlavorVK: "code is expired"}
	switch {
	case !ok:
		tokenError(w, http.StatusBadRequest, "invalid_grant", map[Flavor]string{FlavorOIDC: "Bad Request", FlavorYandex: "Code has expired", FlavorVK: "code is invalid"}[cfg.Flavor])
		return
	case time.Now().After(g.expires):
		tokenError(w, http.StatusBadRequest, "invalid_grant", expired[cfg.Flavor])
		return
	case g.client != id:
		tokenError(w, http.StatusBadRequest, "invalid_grant", "code was issued to another client")
		return
	case (cfg.Flavor != FlavorYandex || f.Has("redirect_uri")) && f.Get("redirect_uri") != g.redirect:
		code := "invalid_grant"
		if cfg.Flavor == FlavorOIDC {
			code = "redirect_uri_mismatch"
		}
		tokenError(w, http.StatusBadRequest, code, "redirect_uri does not match the authorization request")
		return
	}
	if g.challenge != "" || cfg.Flavor == FlavorVK {
		v := f.Get("code_verifier")
		want := g.challenge
		got := v
		if strings.EqualFold(g.method, "S256") {
			sum := sha256.Sum256([]byte(v))
			got = base64.RawURLEncoding.EncodeToString(sum[:])
		}
		if v == "" || got != want {
			desc := map[Flavor]string{FlavorOIDC: "Invalid code verifier.", FlavorYandex: "Code verifier is not valid", FlavorVK: "code_verifier is invalid"}[cfg.Flavor]
			tokenError(w, http.StatusBadRequest, "invalid_grant", desc)
			return
		}
	}
	if cfg.Flavor == FlavorVK {
		if f.Get("device_id") == "" || f.Get("device_id") != g.device {
			tokenError(w, http.StatusBadRequest, "invalid_request", "device_id is missing or invalid")
			return
		}
		if f.Get("state") != g.state {
			tokenError(w, http.StatusBadRequest, "invalid_request", "state is missing or invalid")
			return
		}
	}
	at := randString(32)
	s.mu.Lock()
	s.tokens[at] = g.user
	s.mu.Unlock()
	out := map[string]any{"access_token": at, "token_type": "Bearer", "expires_in": 3600}
	switch cfg.Flavor {
	case FlavorOIDC:
		now := time.Now()
		claims := jwt.MapClaims{"iss": cfg.Issuer, "aud": g.client, "sub": g.user.Subject, "iat": now.Unix(),
			"exp": now.Add(time.Hour).Unix(), "email": g.user.Email, "email_verified": g.user.EmailVerified}
		if g.nonce != "" {
			claims["nonce"] = g.nonce
		}
		t := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
		t.Header["kid"] = s.kid
		idt, err := t.SignedString(s.key)
		if err != nil {
			tokenError(w, http.StatusInternalServerError, "server_error", "signing failed")
			return
		}
		out["id_token"] = idt
		out["scope"] = "openid email profile"
	case FlavorYandex:
		out["refresh_token"] = randString(32)
	case FlavorVK:
		out["refresh_token"] = randString(32)
		out["user_id"] = g.user.Subject
		out["state"] = g.state
		out["scope"] = "email"
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) userFor(tok string) (User, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.tokens[tok]
	return u, ok
}

func (s *Server) userinfo(w http.ResponseWriter, r *http.Request) {
	h := r.Header.Get("Authorization")
	u, ok := s.userFor(strings.TrimPrefix(h, "Bearer "))
	if !strings.HasPrefix(h, "Bearer ") || !ok {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		tokenError(w, http.StatusUnauthorized, "invalid_token", "Invalid Credentials")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"sub": u.Subject, "email": u.Email, "email_verified": u.EmailVerified})
}

func (s *Server) yandexInfo(w http.ResponseWriter, r *http.Request) {
	h := r.Header.Get("Authorization")
	tok, isOAuth := strings.CutPrefix(h, "OAuth ")
	u, ok := s.userFor(tok)
	if !isOAuth || !ok {
		tokenError(w, http.StatusUnauthorized, "invalid_token", "expired_token or unknown token; use Authorization: OAuth <token>")
		return
	}
	if r.URL.Query().Get("format") != "json" {
		http.Error(w, "format=json required", http.StatusBadRequest)
		return
	}
	info := map[string]any{"id": u.Subject, "login": strings.Split(u.Email, "@")[0], "client_id": "", "psuid": "1." + u.Subject}
	if u.Email != "" {
		info["default_email"] = u.Email
		info["emails"] = []string{u.Email}
	}
	writeJSON(w, http.StatusOK, info)
}

func (s *Server) vkUserInfo(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		tokenError(w, http.StatusBadRequest, "invalid_request", "malformed form")
		return
	}
	u, ok := s.userFor(r.PostForm.Get("access_token"))
	if !ok || r.PostForm.Get("client_id") == "" {
		tokenError(w, http.StatusUnauthorized, "invalid_token", "access_token is missing or invalid")
		return
	}
	user := map[string]any{"user_id": u.Subject, "first_name": "Test", "last_name": "User", "verified": false}
	if u.Email != "" {
		user["email"] = u.Email
	}
	writeJSON(w, http.StatusOK, map[string]any{"user": user})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func randString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// DefaultLocalAddr is where `make run` serves the local IdP.
const DefaultLocalAddr = "127.0.0.1:8089"

// LocalClientID is the client id auth uses with the local IdP (its default
// LOCAL_OIDC_CLIENT_ID).
const LocalClientID = "overture-local"

// StartLocal binds addr (":0"-style addresses pick a free port), serves the
// local IdP there until ctx ends, and returns its issuer URL — the value of
// auth's LOCAL_OIDC_ISSUER. publicBaseURL is the gateway's base URL, where
// the callback /v1/auth/oauth/local/callback lives; users is the provider's
// account store. done closes when the server has stopped.
func StartLocal(ctx context.Context, addr, publicBaseURL string, users *LocalUsers, log *slog.Logger) (issuer string, done <-chan error, err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("local idp: listen on %s: %w", addr, err)
	}
	issuer = "http://" + ln.Addr().String()
	s, err := NewLocal(issuer, LocalClientID, "", publicBaseURL, users)
	if err != nil {
		ln.Close()
		return "", nil, err
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second}
	ch := make(chan error, 1)
	go func() {
		err := srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		ch <- err
	}()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Info("local identity provider listening", "issuer", issuer)
	return issuer, ch, nil
}

// DevConfig is what StartDev reads.
type DevConfig struct {
	// Issuer is an issuer already configured (LOCAL_OIDC_ISSUER): StartDev
	// starts nothing.
	Issuer string
	// Off is LOCAL_IDP=off: no local IdP.
	Off bool
	// PublicBaseURL is where the platform's gateway answers (PUBLIC_BASE_URL).
	PublicBaseURL string
	// DataDir keeps the provider's accounts in DataDir/idp/users.json
	// (OVERTURE_DATA_DIR; unset: in memory).
	DataDir string
}

// Read fills c from r; every problem is recorded on r.
func (c *DevConfig) Read(r *config.Reader) {
	c.Issuer = r.StringOr("LOCAL_OIDC_ISSUER", "") // as given: an issuer is compared byte for byte
	c.Off = r.StringOr("LOCAL_IDP", "") == "off"
	c.PublicBaseURL = r.URLOr("PUBLIC_BASE_URL", "")
	c.DataDir = r.StringOr("OVERTURE_DATA_DIR", "")
}

// StartDev is the one call the embedded platform makes before starting the
// services: unless cfg already names an issuer (LOCAL_OIDC_ISSUER) or
// LOCAL_IDP is "off", it serves the local IdP on DefaultLocalAddr (a free
// port when that one is taken) for PUBLIC_BASE_URL and sets
// cfg["LOCAL_OIDC_ISSUER"], which makes auth offer /v1/auth/oauth/local/start.
// The provider's accounts are kept in OVERTURE_DATA_DIR/idp/users.json
// (in memory when OVERTURE_DATA_DIR is unset). The settings are DevConfig.
// It returns the issuer ("" when not started); the server stops with ctx.
func StartDev(ctx context.Context, cfg map[string]string, log *slog.Logger) (string, error) {
	c, err := config.Parse[DevConfig](cfg)
	if err != nil {
		return "", fmt.Errorf("local idp: %w", err)
	}
	if c.Issuer != "" || c.Off {
		return c.Issuer, nil
	}
	if c.PublicBaseURL == "" {
		return "", errors.New("local idp: PUBLIC_BASE_URL is not set")
	}
	var file string
	if c.DataDir != "" {
		file = filepath.Join(c.DataDir, "idp", "users.json")
	}
	users, err := OpenLocalUsers(file)
	if err != nil {
		return "", err
	}
	iss, _, err := StartLocal(ctx, DefaultLocalAddr, c.PublicBaseURL, users, log)
	if err != nil {
		log.Warn("local identity provider: default address taken, using a free port", "address", DefaultLocalAddr, "error", err)
		if iss, _, err = StartLocal(ctx, "127.0.0.1:0", c.PublicBaseURL, users, log); err != nil {
			return "", err
		}
	}
	cfg["LOCAL_OIDC_ISSUER"] = iss
	return iss, nil
}
