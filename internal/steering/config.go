package steering

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"

	"github.com/overture-music/overture/edge"
	"github.com/overture-music/overture/edge/urlsign"
	"github.com/overture-music/overture/internal/config"
	"github.com/overture-music/overture/internal/server"
	"github.com/overture-music/overture/internal/token"
)

func jsonEncode(w io.Writer, v any) error { return json.NewEncoder(w).Encode(v) }

// Configuration keys of the steering service and the POP admin client.
const (
	KeyPOPs        = "CDN_POPS"          // name=region=url,… (required)
	KeySigningKeys = edge.KeySigningKeys // kid:secret,… (required; the first signs)
	KeyAdminSecret = edge.KeyAdminSecret // the POPs' admin secret (required by cdn-warm, cdn-purge)
)

// ConfigFromMap reads the service's settings:
//
//	CDN_POPS          name=region=url,…   (required; e.g. pop-eu-west=eu-west=http://127.0.0.1:9101)
//	CDN_SIGNING_KEYS  kid:secret,…        (required; the first signs; all verify at the edges)
//	CDN_LATENCY_MS    a>b=ms,…            (symmetric region latency matrix)
//	CDN_REGION_CIDRS  cidr=region,…       (client address → listener region)
//	CDN_DEFAULT_REGION, CDN_URL_TTL, CDN_MIN_DWELL, CDN_KEY_PREFIX (default tracks/)
//	METRICS_TOKEN     the bearer token of the POPs' /stats (sent when set)
//	CDN_ADMIN_SECRET  the POPs' admin secret, for the admin purge and warm (optional)
//	AUTH_JWKS_URL (default PUBLIC_BASE_URL/.well-known/jwks.json), AUTH_ISSUER (default PUBLIC_BASE_URL)
//
// There are no development fallbacks: a missing required key stops the
// service at start, naming the key. `make run`'s values (three loopback POPs,
// a development signing key) are the embedded platform's defaults.
func ConfigFromMap(m map[string]string) (Config, error) {
	r := config.NewReader(m)
	c := ReadConfig(r)
	if err := r.Err(); err != nil {
		return c, fmt.Errorf("steering: %w", err)
	}
	return c, nil
}

// ReadConfig reads ConfigFromMap's settings from r, recording every problem
// on r.
func ReadConfig(r *config.Reader) Config {
	var c Config
	if pops := r.String(KeyPOPs); pops != "" {
		var err error
		if c.POPs, err = ParsePOPs(pops); err != nil {
			r.Fail(KeyPOPs, "%w", err)
		}
	}
	if keys := r.Secret(KeySigningKeys); !keys.IsZero() {
		var err error
		if c.Keys, c.SignWith, err = urlsign.ParseKeys(keys.Reveal()); err != nil {
			r.Fail(KeySigningKeys, "%w", err)
		}
	}
	c.Latency = map[string]float64{}
	for _, kv := range splitList(r.StringOr("CDN_LATENCY_MS", "")) {
		pair, ms, ok := strings.Cut(kv, "=")
		v, perr := strconv.ParseFloat(ms, 64)
		if !ok || perr != nil || !strings.Contains(pair, ">") {
			r.Fail("CDN_LATENCY_MS", "entry %q: want a>b=ms", kv)
			continue
		}
		c.Latency[pair] = v
	}
	c.RegionCIDRs = map[netip.Prefix]string{}
	for _, kv := range splitList(r.StringOr("CDN_REGION_CIDRS", "")) {
		cidr, region, ok := strings.Cut(kv, "=")
		p, perr := netip.ParsePrefix(cidr)
		if !ok || perr != nil || region == "" {
			r.Fail("CDN_REGION_CIDRS", "entry %q: want cidr=region", kv)
			continue
		}
		c.RegionCIDRs[p.Masked()] = region
	}
	c.StatsToken = r.SecretOptional(server.KeyMetricsToken).Reveal()
	c.AdminSecret = r.SecretOptional(KeyAdminSecret).Reveal()
	c.DefaultRegion = r.StringOr("CDN_DEFAULT_REGION", "")
	c.KeyPrefix = r.StringOr("CDN_KEY_PREFIX", "") // default "tracks/"
	c.URLTTL = r.DurationOr("CDN_URL_TTL", 0)
	c.MinDwell = r.DurationOr("CDN_MIN_DWELL", 0)
	c.Verifier = token.ReadVerifierConfig(r).Verifier()
	return c
}

// AdminConfig reads what a function that drives the POPs' admin API needs
// (cdn-warm, cdn-purge): CDN_POPS and CDN_ADMIN_SECRET, both required.
func AdminConfig(cfg map[string]string) ([]POP, edge.AdminClient, error) {
	r := config.NewReader(cfg)
	pops, client := ReadAdminConfig(r)
	if err := r.Err(); err != nil {
		return nil, edge.AdminClient{}, fmt.Errorf("steering: %w", err)
	}
	return pops, client, nil
}

// ReadAdminConfig reads CDN_POPS and CDN_ADMIN_SECRET from r, recording
// every problem on r.
func ReadAdminConfig(r *config.Reader) ([]POP, edge.AdminClient) {
	var pops []POP
	if list := r.String(KeyPOPs); list != "" {
		var err error
		if pops, err = ParsePOPs(list); err != nil {
			r.Fail(KeyPOPs, "%w", err)
		}
	}
	return pops, edge.AdminClient{Secret: r.Secret(KeyAdminSecret).Reveal()}
}

// ParsePOPs reads "name=region=url,…".
func ParsePOPs(s string) ([]POP, error) {
	var out []POP
	for _, e := range splitList(s) {
		f := strings.SplitN(e, "=", 3)
		if len(f) != 3 || f[0] == "" || f[1] == "" || !strings.HasPrefix(f[2], "http") {
			return nil, fmt.Errorf("entry %q: want name=region=http://host:port", e)
		}
		out = append(out, POP{Name: f[0], Region: f[1], URL: f[2]})
	}
	if len(out) == 0 {
		return nil, errors.New("is empty")
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
