package steering

import (
	"strings"
	"testing"
)

func TestAdminConfig(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		cfg     map[string]string
		pops    int
		wantErr string
	}{
		// Started outside make run with nothing set: no fallback to the
		// development POPs and admin secret, an error naming both keys.
		{"nothing set", map[string]string{}, 0, "CDN_POPS is not set\nCDN_ADMIN_SECRET is not set"},
		{"explicit", map[string]string{"CDN_POPS": "a=eu=http://a:1", "CDN_ADMIN_SECRET": "s"}, 1, ""},
		{"pops without a secret", map[string]string{"CDN_POPS": "a=eu=http://a:1"}, 0, "CDN_ADMIN_SECRET is not set"},
		{"bad entry", map[string]string{"CDN_POPS": "a=eu", "CDN_ADMIN_SECRET": "s"}, 0, "want name=region=http://host:port"},
	}
	for _, c := range cases {
		pops, client, err := AdminConfig(c.cfg)
		switch {
		case c.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%s: err = %v, want %q", c.name, err, c.wantErr)
			}
		case err != nil:
			t.Errorf("%s: %v", c.name, err)
		case len(pops) != c.pops || client.Secret == "":
			t.Errorf("%s: %d POPs, secret set %v", c.name, len(pops), client.Secret != "")
		}
	}
}

// The steering service started standalone without its settings does not
// start (it used to sign URLs with the public development key); the error
// names each missing key, never a secret's value.
func TestConfigFromMapFailsClosed(t *testing.T) {
	t.Parallel()
	base := map[string]string{"PUBLIC_BASE_URL": "http://gw.test"}
	cases := []struct {
		name    string
		set     map[string]string
		wantErr []string
	}{
		{"nothing", nil, []string{"CDN_POPS is not set", "CDN_SIGNING_KEYS is not set"}},
		{"POPs only", map[string]string{"CDN_POPS": "a=eu=http://a:1"}, []string{"CDN_SIGNING_KEYS is not set"}},
		{"short key", map[string]string{"CDN_POPS": "a=eu=http://a:1", "CDN_SIGNING_KEYS": "k1:short-value"}, []string{"CDN_SIGNING_KEYS: signing key \"k1\""}},
		{"bad TTL", map[string]string{"CDN_POPS": "a=eu=http://a:1", "CDN_SIGNING_KEYS": "k1:0123456789abcdef0123", "CDN_URL_TTL": "2 hours"}, []string{"CDN_URL_TTL: "}},
	}
	for _, c := range cases {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for k, v := range c.set {
			m[k] = v
		}
		_, err := ConfigFromMap(m)
		if err == nil {
			t.Errorf("%s: started", c.name)
			continue
		}
		for _, w := range c.wantErr {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %v, want %q", c.name, err, w)
			}
		}
		if strings.Contains(err.Error(), "short-value") {
			t.Errorf("%s: the secret is in the error: %v", c.name, err)
		}
	}
	c, err := ConfigFromMap(map[string]string{"PUBLIC_BASE_URL": "http://gw.test", "CDN_POPS": "a=eu=http://a:1", "CDN_SIGNING_KEYS": "k1:0123456789abcdef0123"})
	if err != nil || len(c.POPs) != 1 || c.SignWith != "k1" || c.Verifier == nil {
		t.Fatalf("complete settings: %+v, %v", c, err)
	}
}
