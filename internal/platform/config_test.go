package platform

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/overture-music/overture/edge"
	"github.com/overture-music/overture/internal/config"
	"github.com/overture-music/overture/internal/payment"
	"github.com/overture-music/overture/internal/steering"
)

func TestApplyDefaultsExpandsAndKeepsOverrides(t *testing.T) {
	saved := defaults
	t.Cleanup(func() { defaults = saved })
	defaults = map[string]string{
		"SEARCH_DIR":  "${OVERTURE_DATA_DIR}/search",
		"AUTH_ISSUER": "${PUBLIC_BASE_URL}",
		"MAIL_FROM":   "noreply@overture.local",
	}
	dir := t.TempDir()
	cfg := map[string]string{KeyDataDir: dir, KeyPublicBaseURL: "http://127.0.0.1:8080", "MAIL_FROM": "ops@example.com"}
	if err := applyDefaults(cfg); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"SEARCH_DIR": dir + "/search", "AUTH_ISSUER": "http://127.0.0.1:8080", "MAIL_FROM": "ops@example.com"} {
		if cfg[k] != want {
			t.Errorf("%s = %q, want %q", k, cfg[k], want)
		}
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:secret@db:5432/x": "postgres://u:xxxxx@db:5432/x",
		"redis://127.0.0.1:6380/0":      "redis://127.0.0.1:6380/0",
		"smtp://user@mail:25":           "smtp://user@mail:25",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTraversable(t *testing.T) {
	root, err := os.MkdirTemp("", "traversable-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	dir := root + "/a/b"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(root, 0o700); err != nil {
		t.Fatal(err)
	}
	const other = 54321
	if err := traversable(dir+"/postgres", other, other); err == nil {
		t.Fatal("a 0700 ancestor was reported traversable for another user")
	}
	if err := os.Chmod(root, 0o711); err != nil {
		t.Fatal(err)
	}
	if err := traversable(dir+"/postgres", other, other); err != nil {
		t.Fatalf("o+x ancestors reported unreachable: %v", err)
	}
}

// make run generates the key that encrypts auth's signing keys once, keeps it
// private under the data directory and reuses it on the next start; a key
// set in the environment wins.
func TestAuthKeyEncryptionKeyKeptUnderDataDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first := map[string]string{KeyDataDir: dir}
	if err := applyDefaults(first); err != nil {
		t.Fatal(err)
	}
	k := first[KeyAuthKeyEncryption]
	if _, err := config.DecodeKey32(k); err != nil {
		t.Fatalf("generated key: %v", err)
	}
	st, err := os.Stat(filepath.Join(dir, authKeyFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
	again := map[string]string{KeyDataDir: dir}
	if err := applyDefaults(again); err != nil || again[KeyAuthKeyEncryption] != k {
		t.Fatalf("second start got another key (%v)", err)
	}
	set := map[string]string{KeyDataDir: dir, KeyAuthKeyEncryption: "from-env"}
	if err := applyDefaults(set); err != nil || set[KeyAuthKeyEncryption] != "from-env" {
		t.Fatalf("the environment's key was replaced (%v)", err)
	}
	bad := t.TempDir()
	if err := os.WriteFile(filepath.Join(bad, authKeyFile), []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := applyDefaults(map[string]string{KeyDataDir: bad}); err == nil || !strings.Contains(err.Error(), KeyAuthKeyEncryption) {
		t.Fatalf("a damaged key file: %v, want an error naming %s", err, KeyAuthKeyEncryption)
	}
}

// Inside make run the components that now fail closed get everything they
// need from the platform's defaults; the same components given the bare
// environment (standalone, Knative) refuse to start, naming the keys.
func TestComponentsStartOnlyWithPlatformDefaults(t *testing.T) {
	t.Parallel()
	env := map[string]string{KeyS3Endpoint: "http://127.0.0.1:1", KeyS3AccessKey: "a", KeyS3SecretKey: "b",
		KeyPublicBaseURL: "http://127.0.0.1:8080"}
	cfg := map[string]string{KeyDataDir: t.TempDir()}
	for k, v := range env {
		cfg[k] = v
	}
	if err := applyDefaults(cfg); err != nil {
		t.Fatal(err)
	}
	starts := map[string]struct {
		start func(map[string]string) error
		keys  []string
	}{
		"steering": {func(m map[string]string) error { _, err := steering.ConfigFromMap(m); return err }, []string{"CDN_POPS", "CDN_SIGNING_KEYS"}},
		"edge":     {func(m map[string]string) error { _, err := edge.ConfigFromMap(m); return err }, []string{"CDN_SIGNING_KEYS", "CDN_ADMIN_SECRET", "METRICS_TOKEN"}},
		"cdn-warm": {func(m map[string]string) error { _, _, err := steering.AdminConfig(m); return err }, []string{"CDN_POPS", "CDN_ADMIN_SECRET"}},
		"payment":  {func(m map[string]string) error { _, err := payment.FromConfig(m); return err }, []string{"PAYMENT_PROVIDER_URL", "PAYMENT_SHOP_ID", "PAYMENT_SECRET_KEY"}},
	}
	for name, c := range starts {
		if err := c.start(cfg); err != nil {
			t.Errorf("%s with the platform's defaults: %v", name, err)
		}
		err := c.start(env)
		if err == nil {
			t.Errorf("%s started without the platform's defaults", name)
			continue
		}
		for _, k := range c.keys {
			if !strings.Contains(err.Error(), k+" is not set") {
				t.Errorf("%s: %v, want it to name %s", name, err, k)
			}
		}
	}
}

// The development secrets are reachable only through the embedded
// platform: no Go file outside internal/platform carries one (a component
// that fell back to it would serve production with a public key).
func TestDevSecretsStayInPlatform(t *testing.T) {
	t.Parallel()
	secrets := []string{devCDNSigningKeys, devCDNAdminSecret, devMetricsToken, devPaymentShopID, devPaymentSecretKey, devPaymentWebhookSecret, DefaultS3SecretKey}
	// The kid:secret pair is also refused by its secret half alone.
	secrets = append(secrets, strings.SplitN(devCDNSigningKeys, ":", 2)[1])
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	self, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	files := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata" || path == self) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		files++
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				rel, _ := filepath.Rel(root, path)
				t.Errorf("%s carries the development secret %q; only internal/platform may", rel, s)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 100 {
		t.Fatalf("scanned %d Go files under %s; the walk missed the tree", files, root)
	}
}
