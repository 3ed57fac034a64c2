package auth_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/overture-music/overture/internal/auth"
	"github.com/overture-music/overture/internal/idp"
	"github.com/overture-music/overture/internal/telemetry"
	"github.com/overture-music/overture/internal/testenv"
)

// TestLocalProviderLoginPage walks the flow `make run` offers: the local OIDC
// provider's HTML login page, any email, back to auth with our tokens.
func TestLocalProviderLoginPage(t *testing.T) {
	t.Parallel()
	var local *idp.Server
	lts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { local.ServeHTTP(w, r) }))
	defer lts.Close()
	svc := auth.New()
	svc.Argon2 = testArgon
	logs := &syncBuf{}
	svc.Log = telemetry.NewLogger(logs, nil)
	ts := httptest.NewServer(svc)
	defer ts.Close()
	var err error
	if local, err = idp.NewLocal(lts.URL, "overture-local", "local-secret", ts.URL); err != nil {
		t.Fatal(err)
	}
	cfg := map[string]string{"DATABASE_URL": testenv.Postgres(t), "REDIS_URL": testenv.Redis(t), "PUBLIC_BASE_URL": ts.URL,
		"LOCAL_OIDC_ISSUER": lts.URL, "LOCAL_OIDC_CLIENT_SECRET": "local-secret"}
	if err := svc.Start(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	defer svc.Stop(t.Context())

	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	res, err := c.Get(ts.URL + "/v1/auth/oauth/local/start")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(page), `<form method="post"`) {
		t.Fatalf("login page: %d %s", res.StatusCode, page)
	}
	form := url.Values{"login_email": {"laptop@example.com"}}
	for _, m := range regexp.MustCompile(`name="([a-z_]+)" value="([^"]*)"`).FindAllStringSubmatch(string(page), -1) {
		form.Set(m[1], htmlUnescape(m[2]))
	}
	res, err = c.PostForm(res.Request.URL.String(), form)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(body), `"access_token"`) {
		t.Fatalf("after the login page: %d %s", res.StatusCode, body)
	}
	if strings.Contains(logs.String(), "local-secret") {
		t.Fatal("client secret logged")
	}
}

func htmlUnescape(s string) string {
	return strings.NewReplacer("&amp;", "&", "&#43;", "+", "&#34;", `"`, "&lt;", "<", "&gt;", ">", "&#39;", "'").Replace(s)
}
