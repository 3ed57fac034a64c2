package edge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"regexp"

	"github.com/overture-music/overture/edge/urlsign"
	"github.com/overture-music/overture/internal/config"
	"github.com/overture-music/overture/internal/server"
	"github.com/overture-music/overture/internal/token"
)

// DevPOP is one of the three loopback POPs `make run` starts.
type DevPOP struct{ Name, Region, Addr string }

// DevPOPs are the POPs of `make run`, one per region (the platform's default
// CDN_POPS lists the same three).
var DevPOPs = []DevPOP{
	{"pop-eu-west", "eu-west", "127.0.0.1:9101"},
	{"pop-eu-central", "eu-central", "127.0.0.1:9102"},
	{"pop-ru-central", "ru-central", "127.0.0.1:9103"},
}

// Configuration keys a POP reads (besides S3_*, REDIS_URL, PUBLIC_BASE_URL).
const (
	KeySigningKeys = "CDN_SIGNING_KEYS" // kid:secret,… (required)
	KeyAdminSecret = "CDN_ADMIN_SECRET" // X-Admin-Secret of purge and warm (required)
)

// ConfigFromMap reads a POP's settings from the cfg map. Required:
// S3_ENDPOINT, S3_ACCESS_KEY, S3_SECRET_KEY, CDN_SIGNING_KEYS (kid:secret,…)
// CDN_ADMIN_SECRET and METRICS_TOKEN (/metrics and /stats: steering polls
// /stats with it). Optional: TRUSTED_PROXIES, S3_REGION, CDN_BUCKET (default "media"),
// REDIS_URL, AUTH_JWKS_URL / PUBLIC_BASE_URL and AUTH_ISSUER (premium
// checks), EDGE_MEMORY_BYTES, EDGE_DISK_BYTES, CDN_TAG_PATTERN (regexp whose
// first group is the track id; default `(?:^|/)tracks/([^/]+)/`).
//
// There are no development fallbacks: a POP without its secrets does not
// start (the error names every missing key). `make run` gets its values
// from the embedded platform's defaults (internal/platform).
func ConfigFromMap(m map[string]string) (Config, error) {
	r := config.NewReader(m)
	c := ReadConfig(r)
	if err := r.Err(); err != nil {
		return c, fmt.Errorf("edge: %w", err)
	}
	return c, nil
}

// Keys lists the settings a POP reads.
func Keys() []config.Key { return config.KeysOf(func(r *config.Reader) { ReadConfig(r) }) }

// ReadConfig reads ConfigFromMap's settings from r, recording every
// problem on r.
func ReadConfig(r *config.Reader) Config {
	c := Config{
		S3Endpoint:  r.URL("S3_ENDPOINT"),
		S3AccessKey: r.String("S3_ACCESS_KEY"),
		S3SecretKey: r.Secret("S3_SECRET_KEY").Reveal(),
		S3Region:    r.StringOr("S3_REGION", ""),
		Bucket:      r.StringOr("CDN_BUCKET", ""),
		AdminSecret: r.Secret(KeyAdminSecret).Reveal(),
		RedisURL:    r.StringOr("REDIS_URL", ""),
		MemoryBytes: r.Int64Or("EDGE_MEMORY_BYTES", 0),
		DiskBytes:   r.Int64Or("EDGE_DISK_BYTES", 0),
	}
	if keys := r.Secret(KeySigningKeys); !keys.IsZero() {
		var err error
		if c.SigningKeys, _, err = urlsign.ParseKeys(keys.Reveal()); err != nil {
			r.Fail(KeySigningKeys, "%w", err)
		}
	}
	c.MetricsToken = r.Secret(server.KeyMetricsToken).Reveal()
	c.TrustedProxies = server.ReadGuard(r).TrustedProxies
	if v := r.StringOr("CDN_TAG_PATTERN", ""); v != "" {
		re, err := regexp.Compile(v)
		if err != nil || re.NumSubexp() < 1 {
			r.Fail("CDN_TAG_PATTERN", "must be a regexp with a group capturing the track id")
		}
		c.TagPattern = re
	}
	base := r.URLOr("PUBLIC_BASE_URL", "")
	jwks := r.URLOr("AUTH_JWKS_URL", "")
	if jwks == "" && base != "" {
		jwks = base + "/.well-known/jwks.json"
	}
	iss := r.StringOr("AUTH_ISSUER", base)
	if jwks != "" {
		c.Verifier = (token.VerifierConfig{JWKSURL: jwks, Issuer: iss}).Verifier()
	}
	return c
}

// StartDev starts the three POPs of `make run` from cfg, each with a disk
// tier under dataDir/cdn/<name>, and returns a function that stops them.
func StartDev(ctx context.Context, cfg map[string]string, dataDir string, log *slog.Logger) (func(context.Context) error, error) {
	base, err := ConfigFromMap(cfg)
	if err != nil {
		return nil, err
	}
	var started []*Server
	stop := func(ctx context.Context) error {
		var errs []error
		for _, s := range started {
			errs = append(errs, s.Stop(ctx))
		}
		return errors.Join(errs...)
	}
	for _, p := range DevPOPs {
		c := base
		c.Name, c.Region, c.Addr, c.Logger = p.Name, p.Region, p.Addr, log
		c.DiskDir = filepath.Join(dataDir, "cdn", p.Name)
		if c.DiskBytes == 0 {
			c.DiskBytes = 1 << 30
		}
		s, err := New(c)
		if err == nil {
			err = s.Start(ctx)
		}
		if err != nil {
			_ = stop(ctx)
			return nil, fmt.Errorf("start dev POP %s: %w", p.Name, err)
		}
		started = append(started, s)
	}
	return stop, nil
}
