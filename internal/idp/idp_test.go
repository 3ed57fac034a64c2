package idp_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/overture-music/overture/internal/auth"
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
	iss, done, err := idp.StartLocal(ctx, "127.0.0.1:0", "http://gateway.test", nil, slog.New(slog.DiscardHandler))
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

// localAuthorize posts the local IdP's login page form and returns the
// status and, on success, the redirect's query.
func localAuthorize(t *testing.T, base string, form url.Values) (int, url.Values, string) {
	t.Helper()
	f := url.Values{"response_type": {"code"}, "client_id": {idp.LocalClientID}, "redirect_uri": {"http://gw.test/v1/auth/oauth/local/callback"},
		"scope": {"openid email"}, "state": {"st"}}
	for k, v := range form {
		f[k] = v
	}
	res, err := noFollow().PostForm(base+"/authorize", f)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if loc := res.Header.Get("Location"); loc != "" {
		u, _ := url.Parse(loc)
		return res.StatusCode, u.Query(), string(body)
	}
	return res.StatusCode, nil, string(body)
}

// The local IdP used to sign in as whatever email was typed into its page
// (an admin's included). Now it signs in only the accounts created on that
// page, with their password, and never asserts an email it did not create.
func TestLocalSignsInOnlyItsOwnAccounts(t *testing.T) {
	t.Parallel()
	users, err := idp.OpenLocalUsers("")
	if err != nil {
		t.Fatal(err)
	}
	users.Argon2 = cheapArgon
	var s *idp.Server
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.ServeHTTP(w, r) }))
	t.Cleanup(ts.Close)
	if s, err = idp.NewLocal(ts.URL, idp.LocalClientID, "", "http://gw.test", users); err != nil {
		t.Fatal(err)
	}
	// The original attack: type an existing account's email (no password).
	for _, form := range []url.Values{
		{"login_email": {"admin@overture.test"}},
		{"login_email": {"admin@overture.test"}, "login_password": {"anything-at-all"}, "action": {"login"}},
	} {
		st, back, body := localAuthorize(t, ts.URL, form)
		if back != nil || st == http.StatusFound {
			t.Fatalf("an email nobody signed up with was signed in: %d %v", st, back)
		}
		if form.Has("login_password") && (st != http.StatusUnauthorized || !strings.Contains(body, "Wrong email or password")) {
			t.Fatalf("unknown account: %d %s", st, body)
		}
	}

	st, back, body := localAuthorize(t, ts.URL, url.Values{"login_email": {"Laptop@Example.com"}, "login_password": {"correct horse"}, "action": {"signup"}})
	if st != http.StatusFound || back.Get("code") == "" {
		t.Fatalf("sign-up: %d %s", st, body)
	}
	first := exchangeLocal(t, ts.URL, back.Get("code"))
	if first["email"] != "laptop@example.com" || first["sub"] == "" {
		t.Fatalf("userinfo after sign-up: %v", first)
	}
	if st, _, _ := localAuthorize(t, ts.URL, url.Values{"login_email": {"laptop@example.com"}, "login_password": {"correct horse"}, "action": {"signup"}}); st != http.StatusConflict {
		t.Fatalf("second sign-up with the same email: %d, want 409", st)
	}
	if st, back, _ := localAuthorize(t, ts.URL, url.Values{"login_email": {"laptop@example.com"}, "login_password": {"wrong horse"}, "action": {"login"}}); st != http.StatusUnauthorized || back != nil {
		t.Fatalf("wrong password: %d %v", st, back)
	}
	st, back, body = localAuthorize(t, ts.URL, url.Values{"login_email": {"laptop@example.com"}, "login_password": {"correct horse"}, "action": {"login"}})
	if st != http.StatusFound {
		t.Fatalf("sign-in: %d %s", st, body)
	}
	if again := exchangeLocal(t, ts.URL, back.Get("code")); again["sub"] != first["sub"] {
		t.Fatalf("sign-in asserted subject %v, sign-up %v", again["sub"], first["sub"])
	}
	if st, _, _ := localAuthorize(t, ts.URL, url.Values{"login_email": {"short@example.com"}, "login_password": {"short"}, "action": {"signup"}}); st != http.StatusBadRequest {
		t.Fatalf("short password: %d, want 400", st)
	}
}

func exchangeLocal(t *testing.T, base, code string) map[string]any {
	t.Helper()
	st, tok := exchange(t, base+"/token", url.Values{"grant_type": {"authorization_code"}, "code": {code}, "client_id": {idp.LocalClientID},
		"redirect_uri": {"http://gw.test/v1/auth/oauth/local/callback"}})
	if st != http.StatusOK {
		t.Fatalf("exchange: %d %v", st, tok)
	}
	req, _ := http.NewRequest(http.MethodGet, base+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+tok["access_token"].(string))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var info map[string]any
	_ = json.NewDecoder(res.Body).Decode(&info)
	return info
}

var cheapArgon = auth.Argon2Params{Time: 1, Memory: 8 * 1024, Threads: 1, SaltLen: 16, KeyLen: 32}

// The accounts survive a restart of make run (kept 0600 under the data
// directory), and a subject never goes to a second person after one: the
// email is taken, and subjects are random, not derived from the email.
func TestLocalUsersPersist(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "idp", "users.json")
	u, err := idp.OpenLocalUsers(path)
	if err != nil {
		t.Fatal(err)
	}
	u.Argon2 = cheapArgon
	made, err := u.SignUp("kept@example.com", "kept password")
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("store file: %v %v", st, err)
	}
	raw, _ := os.ReadFile(path)
	if strings.Contains(string(raw), "kept password") || !strings.Contains(string(raw), "$argon2id$") {
		t.Fatalf("store holds %s", raw)
	}
	reopened, err := idp.OpenLocalUsers(path)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := reopened.Check("kept@example.com", "kept password")
	if !ok || got.Subject != made.Subject {
		t.Fatalf("after a restart: %v %v", got, ok)
	}
	if _, err := reopened.SignUp("KEPT@example.com", "another password"); !errors.Is(err, idp.ErrLocalUserExists) {
		t.Fatalf("sign-up of a kept email: %v", err)
	}
	other, err := idp.OpenLocalUsers("")
	if err != nil {
		t.Fatal(err)
	}
	other.Argon2 = cheapArgon
	if fresh, _ := other.SignUp("kept@example.com", "kept password"); fresh.Subject == made.Subject {
		t.Fatal("the same email got the same subject in another store")
	}
}
