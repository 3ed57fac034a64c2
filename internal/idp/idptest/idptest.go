// Package idptest starts the idp stand-ins (Google-like OIDC, Yandex ID,
// VK ID) on loopback servers for tests.
package idptest

import (
	"net/http/httptest"
	"testing"

	"github.com/overture-music/overture/internal/idp"
)

// Start runs a stand-in provider for the test; its issuer is the server URL.
func Start(t testing.TB, cfg idp.Config) (*idp.Server, *httptest.Server) {
	t.Helper()
	s, err := idp.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	s.SetIssuer(ts.URL)
	return s, ts
}
