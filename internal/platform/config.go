package platform

import (
	"net/url"
	"os"
	"strings"
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

// defaults are the embedded platform's values for settings the environment
// leaves unset. An area that needs a local default adds one line here. A
// value may refer to other settings as ${KEY} (e.g. ${OVERTURE_DATA_DIR},
// ${PUBLIC_BASE_URL}), expanded once the dependencies are known.
var defaults = map[string]string{
	KeyS3Region:              DefaultS3Region,
	"SEARCH_DIR":             "${OVERTURE_DATA_DIR}/search",            // Bleve store of the search read model
	"PAYMENT_WEBHOOK_URL":    "${PUBLIC_BASE_URL}/v1/payments/webhook", // where the payment sandbox posts notifications
	"PAYMENT_WEBHOOK_SECRET": "dev-only-sandbox-webhook-secret",        // sandbox signing key in make run; set a real one in production
}

// applyDefaults fills unset keys of cfg from defaults.
func applyDefaults(cfg map[string]string) {
	for k, v := range defaults {
		if cfg[k] == "" {
			cfg[k] = os.Expand(v, func(name string) string { return cfg[name] })
		}
	}
}
