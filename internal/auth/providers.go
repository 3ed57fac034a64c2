package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/overture-music/overture/internal/config"
)

// External identity providers. Each differs in a way that matters:
//
//   - Google (and the local IdP) speak OpenID Connect: endpoints and keys come
//     from discovery, the identity is the ID token, verified (signature, iss,
//     aud, exp) and checked against the nonce we sent; email_verified is a claim.
//   - Yandex ID is OAuth 2.0 with PKCE; the profile is GET login.yandex.ru/info
//     with "Authorization: OAuth <token>" (not Bearer); Yandex only returns
//     addresses it has confirmed, so default_email counts as verified.
//   - VK ID is OAuth 2.1: PKCE is mandatory, the redirect carries a device_id
//     that must be sent back in the code exchange (with the state), and the
//     profile is POST oauth2/user_info with the access token and client_id.
//     VK ID returns an email only when the user confirmed it and consented.
type provider interface {
	authCodeURL(ctx context.Context, state, verifier, nonce string) (string, error)
	complete(ctx context.Context, q url.Values, st stateRecord) (profile, error)
	oidc() bool
}

type profile struct {
	Subject       string
	Email         string
	EmailVerified bool
}

// Callback failures, mapped to problems by the handler.
var (
	errNonce      = errors.New("ID token nonce does not match the one sent")
	errIDToken    = errors.New("ID token is invalid")
	errNoIDToken  = errors.New("token response has no id_token")
	errProfile    = errors.New("provider profile request failed")
	errNoDeviceID = errors.New("VK ID redirect lacks device_id")
	errDiscovery  = errors.New("provider discovery failed")
)

// exchangeError is a refused code exchange (invalid_grant, invalid_client …).
type exchangeError struct {
	Provider, Code, Description string
}

func (e *exchangeError) Error() string {
	s := e.Provider + " refused the authorization code"
	if e.Code != "" {
		s += ": " + e.Code
	}
	if e.Description != "" {
		s += " (" + e.Description + ")"
	}
	return s
}

func asExchangeError(name string, err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		code := re.ErrorCode
		if code == "" && re.Response != nil {
			code = fmt.Sprintf("HTTP %d", re.Response.StatusCode)
		}
		return &exchangeError{Provider: name, Code: code, Description: truncate(re.ErrorDescription, 200)}
	}
	return fmt.Errorf("%s code exchange: %w", name, err)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func providerNames(m map[string]provider) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// configureProviders builds the providers whose client id is configured.
// Keys per provider P (GOOGLE, LOCAL_OIDC, YANDEX, VK): P_CLIENT_ID,
// P_CLIENT_SECRET, P_REDIRECT_URL (default PUBLIC_BASE_URL +
// /v1/auth/oauth/<name>/callback); GOOGLE_ISSUER / LOCAL_OIDC_ISSUER;
// YANDEX_AUTH_URL, YANDEX_TOKEN_URL, YANDEX_INFO_URL; VK_AUTH_URL,
// VK_TOKEN_URL, VK_USERINFO_URL.
func configureProviders(r *config.Reader, base string, client *http.Client) map[string]provider {
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	redirect := func(prefix, name string) string {
		return r.URLOr(prefix+"_REDIRECT_URL", base+"/v1/auth/oauth/"+name+"/callback")
	}
	or := r.StringOr
	secret := func(k string) string { return r.SecretOptional(k).Reveal() }
	ps := map[string]provider{}
	if id := or("GOOGLE_CLIENT_ID", ""); id != "" {
		ps["google"] = &oidcProvider{name: "google", issuer: or("GOOGLE_ISSUER", "https://accounts.google.com"),
			clientID: id, secret: secret("GOOGLE_CLIENT_SECRET"), redirect: redirect("GOOGLE", "google"), client: client}
	}
	if iss := or("LOCAL_OIDC_ISSUER", ""); iss != "" {
		ps["local"] = &oidcProvider{name: "local", issuer: iss, clientID: or("LOCAL_OIDC_CLIENT_ID", "overture-local"),
			secret: secret("LOCAL_OIDC_CLIENT_SECRET"), redirect: redirect("LOCAL_OIDC", "local"), client: client}
	}
	if id := or("YANDEX_CLIENT_ID", ""); id != "" {
		ps["yandex"] = &yandexProvider{client: client, infoURL: or("YANDEX_INFO_URL", "https://login.yandex.ru/info"),
			conf: oauth2.Config{ClientID: id, ClientSecret: secret("YANDEX_CLIENT_SECRET"), RedirectURL: redirect("YANDEX", "yandex"),
				Scopes: []string{"login:email", "login:info"},
				Endpoint: oauth2.Endpoint{AuthURL: or("YANDEX_AUTH_URL", "https://oauth.yandex.ru/authorize"),
					TokenURL: or("YANDEX_TOKEN_URL", "https://oauth.yandex.ru/token"), AuthStyle: oauth2.AuthStyleInParams}}}
	}
	if id := or("VK_CLIENT_ID", ""); id != "" {
		ps["vk"] = &vkProvider{client: client, userInfoURL: or("VK_USERINFO_URL", "https://id.vk.com/oauth2/user_info"),
			conf: oauth2.Config{ClientID: id, ClientSecret: secret("VK_CLIENT_SECRET"), RedirectURL: redirect("VK", "vk"),
				Scopes: []string{"email"},
				Endpoint: oauth2.Endpoint{AuthURL: or("VK_AUTH_URL", "https://id.vk.com/authorize"),
					TokenURL: or("VK_TOKEN_URL", "https://id.vk.com/oauth2/auth"), AuthStyle: oauth2.AuthStyleInParams}}}
	}
	for name, p := range ps {
		if o, ok := p.(*oidcProvider); ok {
			if u, err := url.Parse(o.issuer); err != nil || u.Host == "" {
				r.Fail(map[string]string{"google": "GOOGLE_ISSUER", "local": "LOCAL_OIDC_ISSUER"}[name], "%q is not an issuer URL", o.issuer)
			}
		}
	}
	return ps
}

// oidcProvider is Google or any OIDC issuer (the local IdP). Discovery is
// lazy, so the service starts without the network; a failure is retried on
// the next login.
type oidcProvider struct {
	name, issuer, clientID, secret, redirect string
	client                                   *http.Client

	mu       sync.Mutex
	conf     *oauth2.Config
	verifier *oidc.IDTokenVerifier
}

func (p *oidcProvider) oidc() bool { return true }

func (p *oidcProvider) ctx(ctx context.Context) context.Context {
	ctx = oidc.ClientContext(ctx, p.client)
	return context.WithValue(ctx, oauth2.HTTPClient, p.client)
}

func (p *oidcProvider) discover(ctx context.Context) (*oauth2.Config, *oidc.IDTokenVerifier, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conf != nil {
		return p.conf, p.verifier, nil
	}
	op, err := oidc.NewProvider(p.ctx(ctx), p.issuer)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %v", errDiscovery, p.name, err)
	}
	p.conf = &oauth2.Config{ClientID: p.clientID, ClientSecret: p.secret, RedirectURL: p.redirect,
		Endpoint: op.Endpoint(), Scopes: []string{oidc.ScopeOpenID, "email", "profile"}}
	p.verifier = op.Verifier(&oidc.Config{ClientID: p.clientID})
	return p.conf, p.verifier, nil
}

func (p *oidcProvider) authCodeURL(ctx context.Context, state, verifier, nonce string) (string, error) {
	conf, _, err := p.discover(ctx)
	if err != nil {
		return "", err
	}
	return conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce)), nil
}

func (p *oidcProvider) complete(ctx context.Context, q url.Values, st stateRecord) (profile, error) {
	conf, verifier, err := p.discover(ctx)
	if err != nil {
		return profile{}, err
	}
	// RFC 9207: when the provider names itself in the redirect, it must be ours.
	if iss := q.Get("iss"); iss != "" && iss != p.issuer {
		return profile{}, fmt.Errorf("%w: redirect iss %q is not %q", errIDToken, iss, p.issuer)
	}
	tok, err := conf.Exchange(p.ctx(ctx), q.Get("code"), oauth2.VerifierOption(st.Verifier))
	if err != nil {
		return profile{}, asExchangeError(p.name, err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return profile{}, errNoIDToken
	}
	idt, err := verifier.Verify(p.ctx(ctx), raw)
	if err != nil {
		return profile{}, fmt.Errorf("%w: %v", errIDToken, err)
	}
	if idt.Nonce != st.Nonce {
		return profile{}, errNonce
	}
	var c struct {
		Email    string `json:"email"`
		Verified *bool  `json:"email_verified"`
	}
	if err := idt.Claims(&c); err != nil {
		return profile{}, fmt.Errorf("%w: claims: %v", errIDToken, err)
	}
	return profile{Subject: idt.Subject, Email: c.Email, EmailVerified: c.Verified != nil && *c.Verified}, nil
}

type yandexProvider struct {
	conf    oauth2.Config
	infoURL string
	client  *http.Client
}

func (p *yandexProvider) oidc() bool { return false }

func (p *yandexProvider) authCodeURL(_ context.Context, state, verifier, _ string) (string, error) {
	return p.conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)), nil
}

func (p *yandexProvider) complete(ctx context.Context, q url.Values, st stateRecord) (profile, error) {
	ctx = context.WithValue(ctx, oauth2.HTTPClient, p.client)
	tok, err := p.conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(st.Verifier))
	if err != nil {
		return profile{}, asExchangeError("yandex", err)
	}
	u, err := url.Parse(p.infoURL)
	if err != nil {
		return profile{}, fmt.Errorf("%w: info url: %v", errProfile, err)
	}
	qs := u.Query()
	qs.Set("format", "json")
	u.RawQuery = qs.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return profile{}, fmt.Errorf("%w: %v", errProfile, err)
	}
	req.Header.Set("Authorization", "OAuth "+tok.AccessToken)
	var info struct {
		ID           string   `json:"id"`
		DefaultEmail string   `json:"default_email"`
		Emails       []string `json:"emails"`
	}
	if err := getJSON(p.client, req, &info); err != nil {
		return profile{}, fmt.Errorf("%w: yandex info: %v", errProfile, err)
	}
	if info.ID == "" {
		return profile{}, fmt.Errorf("%w: yandex info has no id", errProfile)
	}
	email := info.DefaultEmail
	if email == "" && len(info.Emails) > 0 {
		email = info.Emails[0]
	}
	return profile{Subject: info.ID, Email: email, EmailVerified: email != ""}, nil
}

type vkProvider struct {
	conf        oauth2.Config
	userInfoURL string
	client      *http.Client
}

func (p *vkProvider) oidc() bool { return false }

func (p *vkProvider) authCodeURL(_ context.Context, state, verifier, _ string) (string, error) {
	return p.conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)), nil
}

func (p *vkProvider) complete(ctx context.Context, q url.Values, st stateRecord) (profile, error) {
	device := q.Get("device_id")
	if device == "" {
		return profile{}, errNoDeviceID
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, p.client)
	tok, err := p.conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(st.Verifier),
		oauth2.SetAuthURLParam("device_id", device), oauth2.SetAuthURLParam("state", q.Get("state")))
	if err != nil {
		return profile{}, asExchangeError("vk", err)
	}
	form := url.Values{"access_token": {tok.AccessToken}, "client_id": {p.conf.ClientID}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.userInfoURL, strings.NewReader(form.Encode()))
	if err != nil {
		return profile{}, fmt.Errorf("%w: %v", errProfile, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	var info struct {
		User struct {
			UserID string `json:"user_id"`
			Email  string `json:"email"`
		} `json:"user"`
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
	}
	if err := getJSON(p.client, req, &info); err != nil {
		return profile{}, fmt.Errorf("%w: vk user_info: %v", errProfile, err)
	}
	if info.Error != "" {
		return profile{}, fmt.Errorf("%w: vk user_info: %s", errProfile, info.Error)
	}
	if info.User.UserID == "" {
		return profile{}, fmt.Errorf("%w: vk user_info has no user_id", errProfile)
	}
	return profile{Subject: info.User.UserID, Email: info.User.Email, EmailVerified: info.User.Email != ""}, nil
}

// getJSON performs req and decodes a 200 JSON answer; other statuses become
// errors naming the status and the provider's error code (never the body).
func getJSON(c *http.Client, req *http.Request, v any) error {
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(body, &e)
		return fmt.Errorf("HTTP %d %s", resp.StatusCode, e.Error)
	}
	return json.Unmarshal(body, v)
}
