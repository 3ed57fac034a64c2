package platform

import (
	"crypto/rand"
	"encoding/base64"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/overture-music/overture/edge"
	"github.com/overture-music/overture/edge/edgetest"
	"github.com/overture-music/overture/edge/urlsign"
)

// The original attack (issue 10): a POP started without CDN settings fell
// back to make run's public signing key, and served a private object of the
// origin to a URL anyone could sign with it. Now such a POP does not start,
// and a POP that has its own key refuses a URL signed with the development
// key (while it serves one signed with its own: the test would see a leak).
func TestPOPWithoutCDNSettingsRefusesToStart(t *testing.T) {
	t.Parallel()
	const key, private = "tracks/t1/aac256/seg1.m4s", "private audio bytes"
	origin := edgetest.NewOrigin(t, map[string]string{key: private})
	env := map[string]string{KeyS3Endpoint: origin.Endpoint, KeyS3AccessKey: origin.AccessKey, KeyS3SecretKey: origin.SecretKey}

	_, err := edge.ConfigFromMap(env)
	if err == nil {
		t.Fatal("a POP without CDN settings started")
	}
	for _, k := range []string{"CDN_SIGNING_KEYS is not set", "CDN_ADMIN_SECRET is not set", "METRICS_TOKEN is not set"} {
		if !strings.Contains(err.Error(), k) {
			t.Errorf("error %q does not name %s", err, k)
		}
	}

	random := func() string {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	env["CDN_SIGNING_KEYS"] = "prod:" + random()
	env["CDN_ADMIN_SECRET"] = random()
	env["METRICS_TOKEN"] = random()
	c, err := edge.ConfigFromMap(env)
	if err != nil {
		t.Fatal(err)
	}
	c.Addr = "127.0.0.1:0"
	pop, err := edge.New(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := pop.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pop.Stop(t.Context()) })

	get := func(kid string, secret []byte) (int, string) {
		tok, err := urlsign.Sign(secret, urlsign.Token{KeyID: kid, Expires: time.Now().Add(time.Hour), Prefix: "tracks/t1/"})
		if err != nil {
			t.Fatal(err)
		}
		res, err := http.Get(pop.URL() + "/media/" + key + "?" + urlsign.Param + "=" + tok)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(body)
	}
	devKID, devSecret, _ := strings.Cut(devCDNSigningKeys, ":")
	if st, body := get(devKID, []byte(devSecret)); st != http.StatusForbidden || strings.Contains(body, private) {
		t.Fatalf("URL signed with the development key: %d %q, want 403", st, body)
	}
	prodKID, prodSecret, _ := strings.Cut(env["CDN_SIGNING_KEYS"], ":")
	if st, body := get(prodKID, []byte(prodSecret)); st != http.StatusOK || body != private {
		t.Fatalf("URL signed with the POP's own key: %d %q", st, body)
	}
}
