package auth_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"github.com/overture-music/overture/internal/auth"
	"github.com/overture-music/overture/internal/idp"
	"github.com/overture-music/overture/internal/idp/idptest"
)

// providers is an auth service with Google-, Yandex- and VK-like stand-ins.
type providers struct {
	*env
	google, yandex, vk *idp.Server
}

func newProviders(t *testing.T) *providers {
	t.Helper()
	g, gts := idptest.Start(t, idp.Config{Flavor: idp.FlavorOIDC})
	y, yts := idptest.Start(t, idp.Config{Flavor: idp.FlavorYandex})
	v, vts := idptest.Start(t, idp.Config{Flavor: idp.FlavorVK})
	e := newEnv(t, map[string]string{
		"GOOGLE_CLIENT_ID": "g-client", "GOOGLE_CLIENT_SECRET": "g-secret-value", "GOOGLE_ISSUER": gts.URL,
		"YANDEX_CLIENT_ID": "y-client", "YANDEX_CLIENT_SECRET": "y-secret-value",
		"YANDEX_AUTH_URL": yts.URL + "/authorize", "YANDEX_TOKEN_URL": yts.URL + "/token", "YANDEX_INFO_URL": yts.URL + "/info",
		"VK_CLIENT_ID": "vk-client", "VK_AUTH_URL": vts.URL + "/authorize", "VK_TOKEN_URL": vts.URL + "/oauth2/auth",
		"VK_USERINFO_URL": vts.URL + "/oauth2/user_info",
	})
	e.secret("g-secret-value", "y-secret-value")
	for name, s := range map[string]*idp.Server{"google": g, "yandex": y, "vk": v} {
		id := map[string]string{"google": "g-client", "yandex": "y-client", "vk": "vk-client"}[name]
		secret := map[string]string{"google": "g-secret-value", "yandex": "y-secret-value"}[name]
		s.Update(func(c *idp.Config) {
			c.Clients = []idp.Client{{ID: id, Secret: secret, RedirectURIs: []string{e.srv.URL + "/v1/auth/oauth/" + name + "/callback"}}}
		})
	}
	return &providers{env: e, google: g, yandex: y, vk: v}
}

func (p *providers) idp(name string) *idp.Server {
	return map[string]*idp.Server{"google": p.google, "yandex": p.yandex, "vk": p.vk}[name]
}

// login runs the browser side of the redirect flow with a cookie jar. hook,
// when set, sees the provider's redirect to our callback before it is
// followed; it may change it or return http.ErrUseLastResponse to stop.
func (p *providers) login(t *testing.T, provider string, hook func(*http.Request) error) (resp, *http.Client) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), p.srv.URL+"/v1/auth/oauth/"+provider+"/callback") {
			q := req.URL.Query()
			p.secret(q.Get("code"), q.Get("state"), q.Get("device_id"))
			if hook != nil {
				return hook(req)
			}
		}
		return nil
	}
	return p.get(t, c, p.srv.URL+"/v1/auth/oauth/"+provider+"/start"), c
}

func (p *providers) get(t *testing.T, c *http.Client, u string) resp {
	t.Helper()
	res, err := c.Get(u)
	if err != nil && !errors.Is(err, http.ErrUseLastResponse) {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	r := resp{Status: res.StatusCode, Header: res.Header, Raw: string(raw)}
	_ = json.Unmarshal(raw, &r.Body)
	p.secret(r.str("access_token"), r.str("refresh_token"))
	return r
}

func TestOAuthLoginCreatesAndLinks(t *testing.T) {
	t.Parallel()
	p := newProviders(t)
	for _, name := range []string{"google", "yandex", "vk"} {
		t.Run(name, func(t *testing.T) {
			email := "new-" + name + "@example.com"
			p.idp(name).Update(func(c *idp.Config) {
				c.AutoLogin = &idp.User{Subject: name + "-sub-1", Email: email, EmailVerified: true}
			})
			r, _ := p.login(t, name, nil)
			r.want(t, 200, "")
			id := r.str("user_id")
			if c := p.claims(r.str("access_token")); c.Subject != id {
				t.Fatalf("token subject %s, account %s", c.Subject, id)
			}
			d := p.outboxData("music.overture.auth.user_registered.v1", id)
			if d["provider"] != name || d["confirm_url"] != nil || d["email"] != email {
				t.Fatalf("UserRegistered data %v", d)
			}
			// The same provider identity logs into the same account, even if
			// the provider's email changed since.
			p.idp(name).Update(func(c *idp.Config) { c.AutoLogin.Email = "changed-" + email })
			again, _ := p.login(t, name, nil)
			if again.want(t, 200, "").str("user_id") != id {
				t.Fatal("second login created another account")
			}
			// The refresh token from a provider login rotates like any other.
			p.refresh(again.str("refresh_token")).want(t, 200, "")
		})
	}

	t.Run("LinksConfirmedAccountByVerifiedEmail", func(t *testing.T) {
		id := p.registerConfirmed("alice@example.com", "alice password")
		p.yandex.Update(func(c *idp.Config) {
			c.AutoLogin = &idp.User{Subject: "y-alice", Email: "Alice@Example.com", EmailVerified: true}
		})
		r, _ := p.login(t, "yandex", nil)
		if r.want(t, 200, "").str("user_id") != id {
			t.Fatal("yandex login did not link the existing account")
		}
		me := p.do("GET", "/v1/auth/me", nil, "Authorization", "Bearer "+r.str("access_token")).want(t, 200, "")
		if me.Body["has_password"] != true || !strings.Contains(me.Raw, `"providers":["yandex"]`) {
			t.Fatalf("/me after linking: %s", me.Raw)
		}
		p.login2(t, "alice@example.com", "alice password")
	})

	t.Run("LinkingUnconfirmedAccountDropsItsPassword", func(t *testing.T) {
		p.secret("squatter password")
		r := p.do("POST", "/v1/auth/register", map[string]string{"email": "victim@example.com", "password": "squatter password"}).want(t, 201, "")
		p.vk.Update(func(c *idp.Config) {
			c.AutoLogin = &idp.User{Subject: "vk-victim", Email: "victim@example.com", EmailVerified: true}
		})
		l, _ := p.login(t, "vk", nil)
		if l.want(t, 200, "").str("user_id") != r.str("user_id") {
			t.Fatal("vk login did not link the pre-registered account")
		}
		p.do("POST", "/v1/auth/login", map[string]string{"email": "victim@example.com", "password": "squatter password"}).want(t, 401, "invalid-credentials")
	})

	t.Run("AdminIsNeverLinkedByEmail", func(t *testing.T) {
		if _, _, err := auth.CreateAdmin(t.Context(), p.pool, "root@example.com", "root password", testArgon); err != nil {
			t.Fatal(err)
		}
		p.secret("root password")
		p.google.Update(func(c *idp.Config) {
			c.AutoLogin = &idp.User{Subject: "g-root", Email: "root@example.com", EmailVerified: true}
		})
		r, _ := p.login(t, "google", nil)
		r.want(t, 409, "account-exists")
		if r.str("access_token") != "" {
			t.Fatal("a provider's verified email gave a session for an admin")
		}
	})

	t.Run("UnverifiedEmailIsNotLinkedOrCreated", func(t *testing.T) {
		p.google.Update(func(c *idp.Config) {
			c.AutoLogin = &idp.User{Subject: "g-unverified", Email: "alice@example.com", EmailVerified: false}
		})
		r, _ := p.login(t, "google", nil)
		r.want(t, 422, "email-not-verified")
	})
}

func (p *providers) login2(t *testing.T, email, pw string) { t.Helper(); p.env.login(email, pw) }

// TestOAuthRefusals drives each failure through the real redirect flow.
func TestOAuthRefusals(t *testing.T) {
	t.Parallel()
	p := newProviders(t)
	user := func(name string) {
		p.idp(name).Update(func(c *idp.Config) {
			c.AutoLogin = &idp.User{Subject: name + "-x", Email: name + "-x@example.com", EmailVerified: true}
			c.Deny = false
		})
	}
	corruptState := func(field, value string) func(*http.Request) error {
		return func(req *http.Request) error {
			key, err := auth.StateKey(req.URL.Query().Get("state"))
			if err != nil {
				return err
			}
			ctx := context.Background()
			var rec map[string]string
			b, _ := p.rdb.Get(ctx, key).Bytes()
			_ = json.Unmarshal(b, &rec)
			rec[field] = value
			b, _ = json.Marshal(rec)
			return p.rdb.Set(ctx, key, b, 0).Err()
		}
	}
	tests := []struct {
		name, provider string
		setup          func()
		hook           func(*http.Request) error
		status         int
		problem        string
		detail         string
	}{
		{name: "WrongPKCEVerifierGoogle", provider: "google", hook: corruptState("v", "wrong-verifier-wrong-verifier-wrong-verifier"), status: 401, problem: "provider-exchange-failed", detail: "invalid_grant"},
		{name: "WrongPKCEVerifierYandex", provider: "yandex", hook: corruptState("v", "wrong-verifier-wrong-verifier-wrong-verifier"), status: 401, problem: "provider-exchange-failed", detail: "Code verifier is not valid"},
		{name: "WrongPKCEVerifierVK", provider: "vk", hook: corruptState("v", "wrong-verifier-wrong-verifier-wrong-verifier"), status: 401, problem: "provider-exchange-failed", detail: "invalid_grant"},
		{name: "WrongNonce", provider: "google", hook: corruptState("n", "someone-elses-nonce"), status: 401, problem: "nonce-mismatch"},
		{name: "ExpiredCodeYandex", provider: "yandex", hook: func(*http.Request) error { p.yandex.ExpireCodes(); return nil }, status: 401, problem: "provider-exchange-failed", detail: "Code has expired"},
		{name: "ExpiredCodeVK", provider: "vk", hook: func(*http.Request) error { p.vk.ExpireCodes(); return nil }, status: 401, problem: "provider-exchange-failed", detail: "code is expired"},
		{name: "VKWithoutDeviceID", provider: "vk", hook: func(req *http.Request) error {
			q := req.URL.Query()
			q.Del("device_id")
			req.URL.RawQuery = q.Encode()
			return nil
		}, status: 400, problem: "bad-request", detail: "device_id"},
		{name: "MissingState", provider: "google", hook: func(req *http.Request) error {
			q := req.URL.Query()
			q.Del("state")
			req.URL.RawQuery = q.Encode()
			return nil
		}, status: 400, problem: "missing-state"},
		{name: "ForgedState", provider: "yandex", hook: func(req *http.Request) error {
			q := req.URL.Query()
			q.Set("state", auth.NewSecret(auth.KindState))
			req.URL.RawQuery = q.Encode()
			return nil
		}, status: 400, problem: "invalid-state"},
		{name: "ProviderDenied", provider: "google", setup: func() { p.google.Update(func(c *idp.Config) { c.Deny = true }) }, status: 401, problem: "provider-denied", detail: "access_denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			user(tt.provider)
			if tt.setup != nil {
				tt.setup()
			}
			r, _ := p.login(t, tt.provider, tt.hook)
			r.want(t, tt.status, tt.problem)
			if !strings.Contains(r.str("detail"), tt.detail) {
				t.Fatalf("detail %q lacks %q", r.str("detail"), tt.detail)
			}
		})
	}

	t.Run("ReplayedState", func(t *testing.T) {
		user("google")
		var callback string
		r, c := p.login(t, "google", func(req *http.Request) error { callback = req.URL.String(); return nil })
		r.want(t, 200, "")
		// Same browser, same state and code, second time.
		p.get(t, c, callback).want(t, 400, "invalid-state")
	})

	t.Run("StateFromAnotherBrowser", func(t *testing.T) {
		user("vk")
		var callback string
		p.login(t, "vk", func(req *http.Request) error { callback = req.URL.String(); return http.ErrUseLastResponse })
		before := p.vk.Exchanges
		p.get(t, &http.Client{}, callback).want(t, 400, "state-mismatch")
		if p.vk.Exchanges != before {
			t.Fatal("the code was exchanged although the state cookie did not match")
		}
	})

	t.Run("MismatchedRedirectURI", func(t *testing.T) {
		user("google")
		p.google.Update(func(c *idp.Config) {
			c.Clients[0].RedirectURIs = []string{p.srv.URL + "/v1/auth/oauth/google/callback/"} // trailing slash: not equal
		})
		defer p.google.Update(func(c *idp.Config) {
			c.Clients[0].RedirectURIs = []string{p.srv.URL + "/v1/auth/oauth/google/callback"}
		})
		before := p.google.Exchanges
		r, _ := p.login(t, "google", func(*http.Request) error { t.Fatal("the provider redirected to a mismatched URI"); return nil })
		if r.Status != 400 || !strings.Contains(r.Raw, "redirect_uri_mismatch") || p.google.Exchanges != before {
			t.Fatalf("provider answered %d %q", r.Status, r.Raw)
		}
	})

	t.Run("UnconfiguredProvider", func(t *testing.T) {
		r := p.do("GET", "/v1/auth/oauth/github/start", nil).want(t, 404, "provider-not-configured")
		if !strings.Contains(r.str("detail"), "google, vk, yandex") {
			t.Fatalf("detail %q should list the configured providers", r.str("detail"))
		}
	})

	t.Run("StartRedirectCarriesPKCEStateNonce", func(t *testing.T) {
		c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		for _, name := range []string{"google", "yandex", "vk"} {
			res, err := c.Get(p.srv.URL + "/v1/auth/oauth/" + name + "/start")
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			u, _ := url.Parse(res.Header.Get("Location"))
			q := u.Query()
			p.secret(q.Get("state"))
			if res.StatusCode != 302 || q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) != 43 ||
				!strings.HasPrefix(q.Get("state"), "ost_") || (name == "google") != (q.Get("nonce") != "") {
				t.Fatalf("%s start: %d %s", name, res.StatusCode, u)
			}
			if !strings.Contains(res.Header.Get("Set-Cookie"), "HttpOnly") {
				t.Fatalf("%s state cookie %q", name, res.Header.Get("Set-Cookie"))
			}
		}
	})
}

// TestOAuthConcurrentFirstLogin: two tabs finishing the first login of the
// same person at once end up in one account.
func TestOAuthConcurrentFirstLogin(t *testing.T) {
	t.Parallel()
	p := newProviders(t)
	p.google.Update(func(c *idp.Config) {
		c.AutoLogin = &idp.User{Subject: "g-twice", Email: "twice@example.com", EmailVerified: true}
	})
	// Both flows stop before the callback, then the callbacks race.
	var urls [2]string
	var clients [2]*http.Client
	for i := range urls {
		_, clients[i] = p.login(t, "google", func(req *http.Request) error { urls[i] = req.URL.String(); return http.ErrUseLastResponse })
	}
	results := make(chan resp, 2)
	for i := range urls {
		go func() {
			res, err := clients[i].Get(urls[i])
			if err != nil {
				results <- resp{Status: -1, Raw: err.Error()}
				return
			}
			defer res.Body.Close()
			raw, _ := io.ReadAll(res.Body)
			r := resp{Status: res.StatusCode, Raw: string(raw)}
			_ = json.Unmarshal(raw, &r.Body)
			p.secret(r.str("access_token"), r.str("refresh_token"))
			results <- r
		}()
	}
	a, b := <-results, <-results
	if a.Status != 200 || b.Status != 200 || a.str("user_id") != b.str("user_id") {
		t.Fatalf("concurrent first logins: %d %s / %d %s", a.Status, a.str("user_id"), b.Status, b.str("user_id"))
	}
	var n int
	_ = p.pool.QueryRow(context.Background(), `SELECT count(*) FROM auth_account WHERE lower(email) = 'twice@example.com'`).Scan(&n)
	if n != 1 {
		t.Fatalf("%d accounts for one person", n)
	}
}
