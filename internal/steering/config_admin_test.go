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
		{"make run defaults", map[string]string{}, 3, ""},
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
