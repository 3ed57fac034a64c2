package auth_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/overture-music/overture/internal/auth"
	"github.com/overture-music/overture/internal/idp"
)

// browserFlow runs a provider sign-in as a browser does, started with
// returnTo, and stops at the callback's redirect back to the app: the
// Location it names, and the browser (its cookies) for the exchange.
func (p *providers) browserFlow(t *testing.T, provider, returnTo string) (*url.URL, *http.Client) {
	t.Helper()
	return p.browserFlowAccept(t, provider, returnTo, "")
}

// browserFlowAccept is browserFlow with the Accept header a browser sends.
func (p *providers) browserFlowAccept(t *testing.T, provider, returnTo, accept string) (*url.URL, *http.Client) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), p.srv.URL+"/v1/auth/oauth/"+provider+"/callback") {
			q := req.URL.Query()
			p.secret(q.Get("code"), q.Get("state"), q.Get("device_id"))
			return nil
		}
		if strings.HasPrefix(req.URL.String(), p.srv.URL) && !strings.HasPrefix(req.URL.Path, "/v1/") {
			return http.ErrUseLastResponse // the app's page: a browser would load it
		}
		return nil
	}
	start := p.srv.URL + "/v1/auth/oauth/" + provider + "/start"
	if returnTo != "" {
		start += "?return_to=" + url.QueryEscape(returnTo)
	}
	req, _ := http.NewRequest("GET", start, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	res, err := c.Do(req)
	if err != nil && !errors.Is(err, http.ErrUseLastResponse) {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("the callback answered %d, not a redirect to the app", res.StatusCode)
	}
	loc, err := url.Parse(res.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	f, _ := url.ParseQuery(loc.Fragment)
	p.secret(f.Get("oauth_code"))
	return loc, c
}

// exchange posts code to the exchange from browser c.
func (p *providers) exchange(t *testing.T, c *http.Client, code string) resp {
	t.Helper()
	req, _ := http.NewRequest("POST", p.srv.URL+"/v1/auth/oauth/exchange", strings.NewReader(`{"code":"`+code+`"}`))
	req.Header.Set("Content-Type", "application/json")
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	r := resp{Status: res.StatusCode, Header: res.Header, Raw: string(raw)}
	_ = json.Unmarshal(raw, &r.Body)
	p.secret(r.str("access_token"), r.str("refresh_token"))
	if r.Status >= 400 && res.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("exchange error %d is %q, not problem+json", r.Status, res.Header.Get("Content-Type"))
	}
	return r
}

// TestOAuthBrowserFlow: started with return_to, the callback sends the
// browser back to the app's page with a one-time code in the fragment (no
// token in any URL), and the page's POST trades the code for tokens of the
// account the provider signed in — once, for a minute, and only from that
// browser. Forged codes and return_to values off this origin are refused;
// a refusal goes back to the page too.
func TestOAuthBrowserFlow(t *testing.T) {
	t.Parallel()
	p := newProviders(t)
	p.google.Update(func(c *idp.Config) {
		c.AutoLogin = &idp.User{Subject: "web-sub-1", Email: "web@example.com", EmailVerified: true}
	})

	t.Run("SignsInThroughTheApp", func(t *testing.T) {
		loc, browser := p.browserFlow(t, "google", "/signin?next=%2Fsearch")
		if got := loc.Scheme + "://" + loc.Host + loc.RequestURI(); got != p.srv.URL+"/signin?next=%2Fsearch" {
			t.Fatalf("redirected to %s, not the return_to page", got)
		}
		for _, mark := range []string{"ort_", "eyJ", "access_token", "refresh_token"} {
			if strings.Contains(loc.String(), mark) {
				t.Fatalf("the redirect carries a token (%s): %s", mark, loc)
			}
		}
		f, _ := url.ParseQuery(loc.Fragment)
		code := f.Get("oauth_code")
		if !strings.HasPrefix(code, auth.KindOAuthCode+"_") {
			t.Fatalf("no one-time code in the fragment: %q", loc.Fragment)
		}
		h, err := auth.ParseSecret(auth.KindOAuthCode, code)
		if err != nil {
			t.Fatal(err)
		}
		ttl := p.rdb.TTL(context.Background(), "auth:oauthcode:"+hex.EncodeToString(h[:])).Val()
		if ttl <= 0 || ttl > time.Minute {
			t.Fatalf("the code lives %s, want at most a minute", ttl)
		}
		r := p.exchange(t, browser, code).want(t, 200, "")
		id := r.str("user_id")
		if c := p.claims(r.str("access_token")); c.Subject != id || id == "" {
			t.Fatalf("token subject %s, account %s", c.Subject, id)
		}
		me := p.do("GET", "/v1/auth/me", nil, "Authorization", "Bearer "+r.str("access_token")).want(t, 200, "")
		if me.str("email") != "web@example.com" {
			t.Fatalf("signed into %s", me.str("email"))
		}
		// The refresh token works like any session's.
		p.refresh(r.str("refresh_token")).want(t, 200, "")
		// Replayed: the code is spent.
		p.exchange(t, browser, code).want(t, 400, "invalid-code")
	})

	t.Run("CodeWorksOnlyInItsBrowser", func(t *testing.T) {
		loc, browser := p.browserFlow(t, "google", "/signin")
		f, _ := url.ParseQuery(loc.Fragment)
		code := f.Get("oauth_code")
		// Another browser (no cookie) is refused, and the attempt spends
		// the code: a stolen code cannot be raced.
		jar, _ := cookiejar.New(nil)
		p.exchange(t, &http.Client{Jar: jar}, code).want(t, 400, "invalid-code")
		p.exchange(t, browser, code).want(t, 400, "invalid-code")
	})

	t.Run("ForgedCodesAreRefused", func(t *testing.T) {
		_, browser := p.browserFlow(t, "google", "/signin")
		forged := auth.NewSecret(auth.KindOAuthCode)
		p.secret(forged)
		state := auth.NewSecret(auth.KindState)
		p.secret(state)
		for name, code := range map[string]string{
			"unknown": forged, "malformed": "oac_abc", "another kind": state, "empty": "",
			"hash of a code": hex.EncodeToString(func() []byte { h := sha256.Sum256([]byte(forged)); return h[:] }()),
		} {
			t.Run(name, func(t *testing.T) {
				p.exchange(t, browser, code).want(t, 400, "invalid-code")
			})
		}
		p.do("POST", "/v1/auth/oauth/exchange", map[string]any{"code": forged, "user_id": "x"}).want(t, 400, "bad-request")
		p.do("POST", "/v1/auth/oauth/exchange", nil, "Content-Type", "text/plain").want(t, 415, "unsupported-media-type")
	})

	t.Run("ReturnToStaysOnThisSite", func(t *testing.T) {
		for _, bad := range []string{
			"https://evil.example/signin", "//evil.example/signin", "/\\evil.example", "signin", "javascript:alert(1)",
			"/v1/auth/me", "/signin#oauth_code=x", "http://user@" + strings.TrimPrefix(p.srv.URL, "http://") + "/signin",
			"/" + strings.Repeat("a", 600),
		} {
			p.do("GET", "/v1/auth/oauth/google/start?return_to="+url.QueryEscape(bad), nil).want(t, 400, "invalid-return-to")
		}
		// The public origin written out is the same page.
		loc, _ := p.browserFlow(t, "google", p.srv.URL+"/account")
		if loc.Path != "/account" || !strings.HasPrefix(loc.Fragment, "oauth_code=") {
			t.Fatalf("redirected to %s", loc)
		}
	})

	t.Run("RefusalGoesBackToThePage", func(t *testing.T) {
		p.google.Update(func(c *idp.Config) { c.Deny = true })
		defer p.google.Update(func(c *idp.Config) { c.Deny = false })
		loc, _ := p.browserFlow(t, "google", "/signin")
		f, _ := url.ParseQuery(loc.Fragment)
		if loc.Path != "/signin" || f.Get("oauth_error") != "provider-denied" || f.Has("oauth_code") || f.Has("detail") {
			t.Fatalf("a denied login went to %s", loc)
		}
	})

	t.Run("BrowserWithoutReturnTo", func(t *testing.T) {
		// A browser's navigation (it asks for HTML first) that started
		// without return_to still lands in the app, at /signin.
		loc, browser := p.browserFlowAccept(t, "google", "", "text/html,application/xhtml+xml,*/*;q=0.8")
		f, _ := url.ParseQuery(loc.Fragment)
		if loc.Path != "/signin" || !f.Has("oauth_code") {
			t.Fatalf("redirected to %s", loc)
		}
		p.exchange(t, browser, f.Get("oauth_code")).want(t, 200, "")
	})

	t.Run("APIClientsStillGetJSON", func(t *testing.T) {
		r, _ := p.login(t, "google", nil)
		r.want(t, 200, "")
		if r.str("access_token") == "" {
			t.Fatalf("no tokens: %s", r.Raw)
		}
	})
}

// TestUpdateLocale: PATCH /v1/auth/me sets the account's language, which
// the next emailed link is written in; anything but en or ru is a 400
// problem and changes nothing.
func TestUpdateLocale(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	id := e.registerConfirmed("locale@example.com", "locale password 1")
	at := e.login("locale@example.com", "locale password 1").str("access_token")
	bearer := []string{"Authorization", "Bearer " + at}
	locale := func() string {
		t.Helper()
		return e.do("GET", "/v1/auth/me", nil, bearer...).want(t, 200, "").str("locale")
	}
	resetLocale := func() string {
		t.Helper()
		e.do("POST", "/v1/auth/password/forgot", map[string]string{"email": "locale@example.com"}).want(t, 202, "")
		e.svc.Settle()
		d := e.outboxData("music.overture.auth.password_reset_requested.v1", id)
		e.secret(strings.TrimPrefix(d["reset_url"].(string), e.cfg["PUBLIC_BASE_URL"]+"/v1/auth/password/reset?token="))
		return d["locale"].(string)
	}
	if got := locale(); got != "ru" {
		t.Fatalf("registered in %q", got)
	}

	r := e.do("PATCH", "/v1/auth/me", map[string]string{"locale": "en"}, bearer...).want(t, 200, "")
	if r.str("locale") != "en" || r.str("user_id") != id {
		t.Fatalf("answer %s", r.Raw)
	}
	if got := resetLocale(); got != "en" {
		t.Fatalf("the reset link after the change is in %q", got)
	}

	for name, body := range map[string]any{
		"german": map[string]any{"locale": "de"}, "empty": map[string]any{"locale": ""}, "upper case": map[string]any{"locale": "RU"},
		"a number": map[string]any{"locale": 5}, "null": map[string]any{"locale": nil}, "nothing": map[string]any{},
		"an unknown field": map[string]any{"locale": "ru", "email": "other@example.com"},
	} {
		t.Run(name, func(t *testing.T) {
			r := e.do("PATCH", "/v1/auth/me", body, bearer...)
			if r.Status != 400 {
				t.Fatalf("status %d: %s", r.Status, r.Raw)
			}
			if r.str("detail") == "" {
				t.Fatalf("no detail: %s", r.Raw)
			}
			if got := locale(); got != "en" {
				t.Fatalf("a refused change changed the locale to %q", got)
			}
		})
	}
	e.do("PATCH", "/v1/auth/me", map[string]string{"locale": "ru"}).want(t, 401, "")
	e.do("PATCH", "/v1/auth/me", nil, append(bearer, "Content-Type", "text/plain")...).want(t, 415, "unsupported-media-type")
	if got := locale(); got != "en" {
		t.Fatalf("locale %q", got)
	}

	e.do("PATCH", "/v1/auth/me", map[string]string{"locale": "ru"}, bearer...).want(t, 200, "")
	if got := resetLocale(); got != "ru" {
		t.Fatalf("the reset link after the change back is in %q", got)
	}
}
