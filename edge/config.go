package edge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/overture-music/overture/edge/urlsign"
	"github.com/overture-music/overture/internal/token"
)

// Defaults shared with the steering service for `make run`.
const (
	DevSigningKeys = "dev:overture-dev-cdn-signing-key"
	DevAdminSecret = "overture-dev-cdn-admin"
)

// DevPOP is one of the three loopback POPs `make run` starts.
type DevPOP struct{ Name, Region, Addr string }

// DevPOPs are the POPs of `make run`, one per region (the same list as
// steering.DevPOPs).
var DevPOPs = []DevPOP{
	{"pop-eu-west", "eu-west", "127.0.0.1:9101"},
	{"pop-eu-central", "eu-central", "127.0.0.1:9102"},
	{"pop-ru-central", "ru-central", "127.0.0.1:9103"},
}

// ConfigFromMap reads a POP's settings from the platform's cfg map:
// S3_ENDPOINT, S3_ACCESS_KEY, S3_SECRET_KEY, S3_REGION, CDN_BUCKET (default
// "media"), CDN_SIGNING_KEYS (kid:secret,…), CDN_ADMIN_SECRET, REDIS_URL,
// AUTH_JWKS_URL / PUBLIC_BASE_URL and AUTH_ISSUER (premium checks),
// EDGE_MEMORY_BYTES, EDGE_DISK_BYTES, CDN_TAG_PATTERN (regexp whose first
// group is the track id; default `(?:^|/)tracks/([^/]+)/`). Unset keys and secrets fall back to
// the development defaults.
func ConfigFromMap(m map[string]string) (Config, error) {
	c := Config{S3Endpoint: m["S3_ENDPOINT"], S3AccessKey: m["S3_ACCESS_KEY"], S3SecretKey: m["S3_SECRET_KEY"],
		S3Region: m["S3_REGION"], Bucket: m["CDN_BUCKET"], AdminSecret: m["CDN_ADMIN_SECRET"], RedisURL: m["REDIS_URL"]}
	if c.S3Endpoint == "" {
		return c, errors.New("edge: S3_ENDPOINT is not set")
	}
	keys := m["CDN_SIGNING_KEYS"]
	if keys == "" {
		keys = DevSigningKeys
	}
	var err error
	if c.SigningKeys, _, err = urlsign.ParseKeys(keys); err != nil {
		return c, fmt.Errorf("edge: CDN_SIGNING_KEYS: %w", err)
	}
	if c.AdminSecret == "" {
		c.AdminSecret = DevAdminSecret
	}
	if v := m["CDN_TAG_PATTERN"]; v != "" {
		if c.TagPattern, err = regexp.Compile(v); err != nil || c.TagPattern.NumSubexp() < 1 {
			return c, fmt.Errorf("edge: CDN_TAG_PATTERN must be a regexp with a group capturing the track id")
		}
	}
	for key, dst := range map[string]*int64{"EDGE_MEMORY_BYTES": &c.MemoryBytes, "EDGE_DISK_BYTES": &c.DiskBytes} {
		if v := m[key]; v != "" {
			if *dst, err = strconv.ParseInt(v, 10, 64); err != nil {
				return c, fmt.Errorf("edge: %s: %w", key, err)
			}
		}
	}
	base := strings.TrimRight(m["PUBLIC_BASE_URL"], "/")
	jwks, iss := m["AUTH_JWKS_URL"], m["AUTH_ISSUER"]
	if jwks == "" && base != "" {
		jwks = base + "/.well-known/jwks.json"
	}
	if iss == "" {
		iss = base
	}
	if jwks != "" {
		c.Verifier = &token.Verifier{Keys: &token.RemoteKeys{URL: jwks}, Issuer: iss, Audience: "overture"}
	}
	return c, nil
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
