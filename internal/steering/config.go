package steering

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/overture-music/overture/edge"
	"github.com/overture-music/overture/edge/urlsign"
	"github.com/overture-music/overture/internal/token"
)

// Defaults of `make run`: three loopback POPs standing for three regions,
// and a development signing key (production sets CDN_POPS and
// CDN_SIGNING_KEYS from a secret).
const (
	DevPOPs        = "pop-eu-west=eu-west=http://127.0.0.1:9101,pop-eu-central=eu-central=http://127.0.0.1:9102,pop-ru-central=ru-central=http://127.0.0.1:9103"
	DevSigningKeys = edge.DevSigningKeys
	DevLatency     = "eu-west>eu-central=20,eu-west>ru-central=50,eu-central>ru-central=35"
	DevAdminSecret = edge.DevAdminSecret
)

func jsonEncode(w io.Writer, v any) error { return json.NewEncoder(w).Encode(v) }

// ConfigFromMap reads the service's settings:
//
//	CDN_POPS          name=region=url,…   (e.g. pop-eu-west=eu-west=http://127.0.0.1:9101)
//	CDN_SIGNING_KEYS  kid:secret,…        (the first signs; all verify at the edges)
//	CDN_LATENCY_MS    a>b=ms,…            (symmetric region latency matrix)
//	CDN_REGION_CIDRS  cidr=region,…       (client address → listener region)
//	CDN_DEFAULT_REGION, CDN_URL_TTL, CDN_MIN_DWELL, CDN_KEY_PREFIX (default tracks/)
//	AUTH_JWKS_URL (default PUBLIC_BASE_URL/.well-known/jwks.json), AUTH_ISSUER (default PUBLIC_BASE_URL)
func ConfigFromMap(m map[string]string) (Config, error) {
	var c Config
	var err error
	pops, keys := m["CDN_POPS"], m["CDN_SIGNING_KEYS"]
	if pops == "" {
		pops = DevPOPs
	}
	if keys == "" {
		keys = DevSigningKeys
	}
	if c.POPs, err = ParsePOPs(pops); err != nil {
		return c, err
	}
	if m["CDN_LATENCY_MS"] == "" && m["CDN_POPS"] == "" {
		m = maps.Clone(m)
		m["CDN_LATENCY_MS"] = DevLatency
	}
	if c.Keys, c.SignWith, err = urlsign.ParseKeys(keys); err != nil {
		return c, fmt.Errorf("steering: CDN_SIGNING_KEYS: %w", err)
	}
	c.Latency = map[string]float64{}
	for _, kv := range splitList(m["CDN_LATENCY_MS"]) {
		pair, ms, ok := strings.Cut(kv, "=")
		v, perr := strconv.ParseFloat(ms, 64)
		if !ok || perr != nil || !strings.Contains(pair, ">") {
			return c, fmt.Errorf("steering: CDN_LATENCY_MS entry %q: want a>b=ms", kv)
		}
		c.Latency[pair] = v
	}
	c.RegionCIDRs = map[netip.Prefix]string{}
	for _, kv := range splitList(m["CDN_REGION_CIDRS"]) {
		cidr, region, ok := strings.Cut(kv, "=")
		p, perr := netip.ParsePrefix(cidr)
		if !ok || perr != nil || region == "" {
			return c, fmt.Errorf("steering: CDN_REGION_CIDRS entry %q: want cidr=region", kv)
		}
		c.RegionCIDRs[p.Masked()] = region
	}
	c.DefaultRegion = m["CDN_DEFAULT_REGION"]
	c.KeyPrefix = m["CDN_KEY_PREFIX"] // default "tracks/"
	for key, dst := range map[string]*time.Duration{"CDN_URL_TTL": &c.URLTTL, "CDN_MIN_DWELL": &c.MinDwell} {
		if v := m[key]; v != "" {
			if *dst, err = time.ParseDuration(v); err != nil {
				return c, fmt.Errorf("steering: %s: %w", key, err)
			}
		}
	}
	base := strings.TrimRight(m["PUBLIC_BASE_URL"], "/")
	jwks := m["AUTH_JWKS_URL"]
	if jwks == "" && base != "" {
		jwks = base + "/.well-known/jwks.json"
	}
	iss := m["AUTH_ISSUER"]
	if iss == "" {
		iss = base
	}
	if jwks == "" {
		return c, fmt.Errorf("steering: AUTH_JWKS_URL or PUBLIC_BASE_URL is required to verify listeners")
	}
	c.Verifier = &token.Verifier{Keys: &token.RemoteKeys{URL: jwks}, Issuer: iss, Audience: "overture"}
	return c, nil
}

// AdminConfig reads what a function that drives the POPs' admin API needs
// (cdn-warm, cdn-purge): CDN_POPS and CDN_ADMIN_SECRET, both defaulting to
// the three loopback POPs of `make run` when CDN_POPS is unset.
func AdminConfig(cfg map[string]string) ([]POP, edge.AdminClient, error) {
	list, secret := cfg["CDN_POPS"], cfg["CDN_ADMIN_SECRET"]
	if list == "" {
		list, secret = DevPOPs, DevAdminSecret
	}
	pops, err := ParsePOPs(list)
	if err != nil {
		return nil, edge.AdminClient{}, err
	}
	if secret == "" {
		return nil, edge.AdminClient{}, fmt.Errorf("steering: CDN_ADMIN_SECRET is not set")
	}
	return pops, edge.AdminClient{Secret: secret}, nil
}

// ParsePOPs reads "name=region=url,…".
func ParsePOPs(s string) ([]POP, error) {
	var out []POP
	for _, e := range splitList(s) {
		f := strings.SplitN(e, "=", 3)
		if len(f) != 3 || f[0] == "" || f[1] == "" || !strings.HasPrefix(f[2], "http") {
			return nil, fmt.Errorf("steering: CDN_POPS entry %q: want name=region=http://host:port", e)
		}
		out = append(out, POP{Name: f[0], Region: f[1], URL: f[2]})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("steering: CDN_POPS is empty")
	}
	return out, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
