package idp_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/overture-music/overture/internal/idp"
	"github.com/overture-music/overture/internal/idp/idptest"
)

const redirect = "http://app.test/cb"

func noFollow() *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// authorize runs the authorize step and returns the redirect's query.
func authorize(t *testing.T, base string, q url.Values) (int, url.Values, string) {
	t.Helper()
	res, err := noFollow().Get(base + "/authorize?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	loc, _ := url.Parse(res.Header.Get("Location"))
	if res.Header.Get("Location") == "" {
		return res.StatusCode, nil, string(body)
	}
	return res.StatusCode, loc.Query(), string(body)
}

func exchange(t *testing.T, tokenURL string, f url.Values) (int, map[string]any) {
	t.Helper()
	res, err := http.PostForm(tokenURL, f)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(res.Body).Decode(&m)
	return res.StatusCode, m
}

func challenge(v string) string {
	s := sha256.Sum256([]byte(v))
	return base64.RawURLEncoding.EncodeToString(s[:])
}

// TestStandInErrors checks each stand-in answers like its provider when the
// client gets something wrong.
func TestStandInErrors(t *testing.T) {
	t.Parallel()
	user := &idp.User{Subject: "42", Email: "u@example.com", EmailVerified: true}
	client := []idp.Client{{ID: "c", Secret: "s", RedirectURIs: []string{redirect}}}
	const verifier = "a-verifier-a-verifier-a-verifier-a-verifier-1"
	flavours := []struct {
		f        idp.Flavor
		tokenURL string
	}{{idp.FlavorOIDC, "/token"}, {idp.FlavorYandex, "/token"}, {idp.FlavorVK, "/oauth2/auth"}}
	for _, fl := range flavours {
		t.Run(fl.f.String(), func(t *testing.T) {
			t.Parallel()
			s, ts := idptest.Start(t, idp.Config{Flavor: fl.f, Clients: client, AutoLogin: user})
			q := url.Values{"response_type": {"code"}, "client_id": {"c"}, "redirect_uri": {redirect}, "state": {"st"},
				"scope": {"openid email"}, "code_challenge": {challenge(verifier)}, "code_challenge_method": {"S256"}}
			code := func() (string, string) {
				st, back, body := authorize(t, ts.URL, q)
				if st != http.StatusFound || back.Get("code") == "" || back.Get("state") != "st" {
					t.Fatalf("authorize: %d %v %s", st, back, body)
				}
				return back.Get("code"), back.Get("device_id")
			}
			form := func(c, dev, v string) url.Values {
				f := url.Values{"grant_type": {"authorization_code"}, "code": {c}, "client_id": {"c"}, "client_secret": {"s"},
					"redirect_uri": {redirect}, "code_verifier": {v}, "state": {"st"}}
				if dev != "" {
					f.Set("device_id", dev)
				}
				return f
			}
			// Wrong verifier: invalid_grant, and the code is burnt.
			c, dev := code()
			if st, m := exchange(t, ts.URL+fl.tokenURL, form(c, dev, verifier+"x")); st != 400 || m["error"] != "invalid_grant" {
				t.Fatalf("wrong verifier: %d %v", st, m)
			}
			if st, m := exchange(t, ts.URL+fl.tokenURL, form(c, dev, verifier)); st != 400 || m["error"] != "invalid_grant" {
				t.Fatalf("replayed code: %d %v", st, m)
			}
			// Expired code.
			c, dev = code()
			s.ExpireCodes()
			if st, m := exchange(t, ts.URL+fl.tokenURL, form(c, dev, verifier)); st != 400 || m["error"] != "invalid_grant" {
				t.Fatalf("expired code: %d %v", st, m)
			}
			// Good exchange.
			c, dev = code()
			st, m := exchange(t, ts.URL+fl.tokenURL, form(c, dev, verifier))
			if st != 200 || m["access_token"] == nil {
				t.Fatalf("exchange: %d %v", st, m)
			}
			if (fl.f == idp.FlavorOIDC) != (m["id_token"] != nil) {
				t.Fatalf("id_token presence wrong for %s: %v", fl.f, m)
			}
			// Unregistered redirect URI: an error page, no redirect.
			bad := url.Values{}
			for k, v := range q {
				bad[k] = v
			}
			bad.Set("redirect_uri", redirect+"/")
			if st, back, body := authorize(t, ts.URL, bad); st != 400 || back != nil || !strings.Contains(body, "redirect_uri_mismatch") {
				t.Fatalf("mismatched redirect: %d %v %s", st, back, body)
			}
			// Flavour specifics.
			switch fl.f {
			case idp.FlavorVK:
				c, _ = code()
				if st, m := exchange(t, ts.URL+fl.tokenURL, form(c, "", verifier)); st != 400 || !strings.Contains(m["error_description"].(string), "device_id") {
					t.Fatalf("VK exchange without device_id: %d %v", st, m)
				}
				noPKCE := url.Values{"response_type": {"code"}, "client_id": {"c"}, "redirect_uri": {redirect}, "state": {"st"}}
				if _, back, _ := authorize(t, ts.URL, noPKCE); back.Get("error") != "invalid_request" {
					t.Fatalf("VK without PKCE: %v", back)
				}
			case idp.FlavorYandex:
				tok := m["access_token"].(string)
				for hdr, want := range map[string]int{"OAuth " + tok: 200, "Bearer " + tok: 401, "OAuth nope": 401} {
					req, _ := http.NewRequest("GET", ts.URL+"/info?format=json", nil)
					req.Header.Set("Authorization", hdr)
					res, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					res.Body.Close()
					if res.StatusCode != want {
						t.Fatalf("yandex info with %q: %d, want %d", strings.Fields(hdr)[0], res.StatusCode, want)
					}
				}
			case idp.FlavorOIDC:
				s.Update(func(c *idp.Config) { c.Deny = true })
				if _, back, _ := authorize(t, ts.URL, q); back.Get("error") != "access_denied" || back.Get("state") != "st" {
					t.Fatalf("deny: %v", back)
				}
			}
		})
	}
}

func TestStartLocal(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	iss, done, err := idp.StartLocal(ctx, "127.0.0.1:0", "http://gateway.test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.Get(iss + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	var d map[string]any
	_ = json.NewDecoder(res.Body).Decode(&d)
	res.Body.Close()
	if d["issuer"] != iss || d["jwks_uri"] != iss+"/jwks" {
		t.Fatalf("discovery %v", d)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestStartDev(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := slog.New(slog.DiscardHandler)
	if iss, err := idp.StartDev(ctx, map[string]string{"LOCAL_IDP": "off", "PUBLIC_BASE_URL": "http://gw.test"}, log); err != nil || iss != "" {
		t.Fatalf("LOCAL_IDP=off started %q %v", iss, err)
	}
	cfg := map[string]string{"PUBLIC_BASE_URL": "http://gw.test"}
	iss, err := idp.StartDev(ctx, cfg, log)
	if err != nil || iss == "" || cfg["LOCAL_OIDC_ISSUER"] != iss {
		t.Fatalf("StartDev: %q %v %v", iss, err, cfg)
	}
	res, err := http.Get(iss + "/authorize?" + url.Values{"client_id": {idp.LocalClientID}, "response_type": {"code"}, "scope": {"openid"},
		"redirect_uri": {"http://gw.test/v1/auth/oauth/local/callback"}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(body), "login_email") {
		t.Fatalf("login page: %d %s", res.StatusCode, body)
	}
}
