package platform

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/overture-music/overture/internal/config"
)

// Configuration keys every function and service may read from its cfg map.
// The platform fills each one, either from the environment (an external
// dependency the user points at) or from the dependency it started itself.
const (
	KeyDatabaseURL   = "DATABASE_URL"
	KeyRedisURL      = "REDIS_URL"
	KeyS3Endpoint    = "S3_ENDPOINT"
	KeyS3AccessKey   = "S3_ACCESS_KEY"
	KeyS3SecretKey   = "S3_SECRET_KEY"
	KeyS3Region      = "S3_REGION"
	KeySMTPURL       = "SMTP_URL"
	KeyMailpitURL    = "MAILPIT_URL"
	KeyPublicBaseURL = "PUBLIC_BASE_URL"
	KeyBrokerURL     = "BROKER_URL"
	KeyOutboxRelay   = "OUTBOX_RELAY"
	KeyDataDir       = "OVERTURE_DATA_DIR"
)

// Defaults of the embedded platform (what `make run` uses).
const (
	DefaultS3AccessKey = "overture"
	DefaultS3SecretKey = "overture-dev-secret"
	DefaultS3Region    = "us-east-1"
	DefaultNamespace   = "overture"
	DefaultBroker      = "default"
)

// Environ returns the process environment as a map (what Knative func passes
// to Start, and where the user overrides dependencies).
func Environ() map[string]string {
	env := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	return env
}

// redactURL hides the password of a URL for printing.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// Development values of `make run`. They exist here and nowhere else: every
// component reads its secrets and URLs from the cfg map with no fallback of
// its own (internal/config), so outside the embedded platform — standalone
// `overture func NAME` / `overture serve NAME` / `overture edge`, or Knative —
// a missing secret stops the component at start, naming the key, instead of
// running with a key everyone can read here. TestDevSecretsStayInPlatform
// checks that no other Go file carries one of these values.
const (
	devCDNPOPs              = "pop-eu-west=eu-west=http://127.0.0.1:9101,pop-eu-central=eu-central=http://127.0.0.1:9102,pop-ru-central=ru-central=http://127.0.0.1:9103"
	devCDNLatency           = "eu-west>eu-central=20,eu-west>ru-central=50,eu-central>ru-central=35"
	devCDNSigningKeys       = "dev:overture-dev-cdn-signing-key"
	devCDNAdminSecret       = "overture-dev-cdn-admin"
	devPaymentShopID        = "overture-dev-shop"
	devPaymentSecretKey     = "overture-dev-payment-secret"
	devPaymentWebhookSecret = "dev-only-sandbox-webhook-secret"
	devMetricsToken         = "overture-dev-metrics"
)

// KeyAuthKeyEncryption is the key that encrypts auth's signing-key seeds at
// rest (base64, 32 bytes). `make run` generates one and keeps it in
// DataDir/authKeyFile; anywhere else it must be set.
const (
	KeyAuthKeyEncryption = "AUTH_KEY_ENCRYPTION_KEY"
	authKeyFile          = "auth-key-encryption.key"
)

// defaults are the embedded platform's values for settings the environment
// leaves unset. An area that needs a local default adds one line here. A
// value may refer to other settings as ${KEY} (e.g. ${OVERTURE_DATA_DIR},
// ${PUBLIC_BASE_URL}), expanded once the dependencies are known.
var defaults = map[string]string{
	KeyS3Region:              DefaultS3Region,
	"SEARCH_DIR":             "${OVERTURE_DATA_DIR}/search",            // Bleve store of the search read model
	"PAYMENT_WEBHOOK_URL":    "${PUBLIC_BASE_URL}/v1/payments/webhook", // where the payment sandbox posts notifications
	"PAYMENT_WEBHOOK_SECRET": devPaymentWebhookSecret,                  // sandbox signing key in make run; set a real one in production
	"PAYMENT_PROVIDER_URL":   "http://127.0.0.1:8095/v3",               // the payment sandbox (PAYMENT_SANDBOX_ADDR's default)
	"PAYMENT_SHOP_ID":        devPaymentShopID,                         // what the sandbox accepts and the adapter sends
	"PAYMENT_SECRET_KEY":     devPaymentSecretKey,
	"CDN_SIGNING_KEYS":       devCDNSigningKeys,      // steering signs, the POPs verify
	"CDN_ADMIN_SECRET":       devCDNAdminSecret,      // the POPs' purge/warm secret (cdn-warm, cdn-purge)
	"METRICS_TOKEN":          devMetricsToken,        // bearer token for /metrics and the POPs' /stats
	"TRUSTED_PROXIES":        "127.0.0.1/32,::1/128", // loopback proxies (the gateway) may name the client
	"LISTENS_URL":            "${PUBLIC_BASE_URL}",   // the query API asks the listens service for cards' stream counts, through the gateway

	// The emailed links open the web app's pages (internal/webapp).
	"AUTH_CONFIRM_LINK": "${PUBLIC_BASE_URL}/confirm?token=",
	"AUTH_RESET_LINK":   "${PUBLIC_BASE_URL}/reset-password?token=",

	// STATS_BACKEND=clickhouse without CLICKHOUSE_URL: the embedded chDB
	// (hack/deps/chdb.sh fetches the library; `make run` runs from the
	// repository root).
	"CHDB_LIB_PATH": ".cache/chdb/26.7.3-stable.1/libchdb.so",
	"CHDB_DATA_DIR": "${OVERTURE_DATA_DIR}/chdb",
}

// cdnDefaults apply only when CDN_POPS is unset: the three loopback POPs
// `make run` starts and the latencies between their regions.
var cdnDefaults = map[string]string{
	KeyCDNPOPs:       devCDNPOPs,
	"CDN_LATENCY_MS": devCDNLatency,
}

// applyDefaults fills unset keys of cfg from defaults, and
// AUTH_KEY_ENCRYPTION_KEY from the key kept under OVERTURE_DATA_DIR
// (generated on first use).
func applyDefaults(cfg map[string]string) error {
	if cfg[KeyCDNPOPs] == "" {
		maps.Copy(cfg, cdnDefaults)
	}
	for k, v := range defaults {
		if cfg[k] == "" {
			cfg[k] = os.Expand(v, func(name string) string { return cfg[name] })
		}
	}
	if cfg[KeyAuthKeyEncryption] == "" {
		if cfg[KeyDataDir] == "" {
			return fmt.Errorf("%s: no data directory to keep a generated one in", KeyAuthKeyEncryption)
		}
		k, err := dataDirKey(filepath.Join(cfg[KeyDataDir], authKeyFile))
		if err != nil {
			return fmt.Errorf("%s: %w", KeyAuthKeyEncryption, err)
		}
		cfg[KeyAuthKeyEncryption] = k
	}
	return nil
}

// ApplyDevDefaults fills cfg with `make run`'s development values where it
// leaves them unset, keeping generated keys under dataDir. Only development
// commands call it (`overture dev` through Start, `overture edge --dev`).
func ApplyDevDefaults(cfg map[string]string, dataDir string) error {
	if cfg[KeyDataDir] == "" {
		cfg[KeyDataDir] = dataDir
	}
	for k, v := range map[string]string{KeyS3AccessKey: DefaultS3AccessKey, KeyS3SecretKey: DefaultS3SecretKey} {
		if cfg[k] == "" {
			cfg[k] = v // the S3 server `make run` starts
		}
	}
	return applyDefaults(cfg)
}

// dataDirKey reads the base64 32-byte key kept in path, creating it (0600,
// random) when it does not exist yet.
func dataDirKey(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		k := strings.TrimSpace(string(b))
		if _, err := config.DecodeKey32(k); err != nil {
			return "", fmt.Errorf("%s: %w", path, err)
		}
		return k, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("generate: %w", err)
	}
	k := base64.StdEncoding.EncodeToString(raw)
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create %s: %w", dir, err)
	}
	// Written aside and linked into place, so a concurrent reader sees the
	// whole key or none, and the first of two writers wins.
	f, err := os.CreateTemp(dir, ".key-*")
	if err != nil {
		return "", fmt.Errorf("create key in %s: %w", dir, err)
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(k + "\n"); err != nil {
		f.Close()
		return "", fmt.Errorf("write %s: %w", f.Name(), err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("write %s: %w", f.Name(), err)
	}
	if err := os.Link(f.Name(), path); errors.Is(err, fs.ErrExist) {
		return dataDirKey(path)
	} else if err != nil {
		return "", fmt.Errorf("create %s: %w", path, err)
	}
	return k, nil
}
