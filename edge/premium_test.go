package edge

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/overture-music/overture/edge/urlsign"
	"github.com/overture-music/overture/internal/testenv"
	"github.com/overture-music/overture/internal/token/tokentest"
)

func TestPremiumRenditionsNeedPremiumEntitlement(t *testing.T) {
	t.Parallel()
	o := newTestOrigin(t)
	auth := tokentest.New(t)
	redisURL := testenv.Redis(t)
	o.put(t, "tracks/p1/premium/flac/full.flac", []byte("lossless"))
	o.put(t, "tracks/p1/hls-aac-256/seg-1.ts", []byte("hifi-ish"))
	o.put(t, "tracks/p1/hls-aac-128/seg-1.ts", []byte("standard"))
	s := startEdge(t, o, func(c *Config) { c.Verifier = auth.Verifier(); c.RedisURL = redisURL })

	free := "Bearer " + auth.Token(t, "user-free", tokentest.Options{})
	prem := "Bearer " + auth.Token(t, "user-prem", tokentest.Options{Premium: true})
	lapsed := "Bearer " + auth.Token(t, "user-lapsed", tokentest.Options{Premium: true, PremiumUntil: time.Now().Add(-time.Minute)})
	revoked := "Bearer " + auth.Token(t, "user-revoked", tokentest.Options{Premium: true})
	upgraded := "Bearer " + auth.Token(t, "user-upgraded", tokentest.Options{})
	stale := "Bearer " + auth.Token(t, "user-stale", tokentest.Options{Premium: true})

	rdb := redis.NewClient(must(redis.ParseURL(redisURL)))
	defer rdb.Close()
	ctx := context.Background()
	// The auth service bumped the version after these tokens were issued (ent_ver 1).
	rdb.Set(ctx, "auth:entitlement:user-revoked", `{"version":2,"premium":false}`, 0)
	rdb.Set(ctx, "auth:entitlement:user-upgraded", `{"version":3,"premium":true,"premium_until":"`+time.Now().Add(time.Hour).Format(time.RFC3339)+`"}`, 0)
	// Not newer than the token: the token's claim stands.
	rdb.Set(ctx, "auth:entitlement:user-stale", `{"version":1,"premium":false}`, 0)

	marker := signed(t, s, "tracks/p1/premium/flac/full.flac", "tracks/p1/", nil)
	flagged := signed(t, s, "tracks/p1/hls-aac-256/seg-1.ts", "tracks/p1/hls-aac-256/", func(tk *urlsign.Token) { tk.Premium = true })
	standard := signed(t, s, "tracks/p1/hls-aac-128/seg-1.ts", "tracks/p1/hls-aac-128/", nil)
	// The catalog's flag, carried in the token as a premium path, with the
	// listener's tier beside it: no access token needed either way.
	catalogFree := signed(t, s, "tracks/p1/hls-aac-256/seg-1.ts", "tracks/p1/", func(tk *urlsign.Token) { tk.PremiumPaths = []string{"hls-aac-256/"} })
	catalogPrem := signed(t, s, "tracks/p1/hls-aac-256/seg-1.ts", "tracks/p1/", func(tk *urlsign.Token) {
		tk.PremiumPaths, tk.ListenerPremium = []string{"hls-aac-256/"}, true
	})
	catalogStd := signed(t, s, "tracks/p1/hls-aac-128/seg-1.ts", "tracks/p1/", func(tk *urlsign.Token) { tk.PremiumPaths = []string{"hls-aac-256/"} })
	cases := []struct {
		name, url, auth string
		want            int
	}{
		{"standard rendition, no token", standard, "", 200},
		{"path marker, no token", marker, "", 403},
		{"catalog premium path, free listener's URL", catalogFree, "", 403},
		{"catalog premium path, premium listener's URL", catalogPrem, "", 200},
		{"catalog free path, free listener's URL", catalogStd, "", 200},
		{"path marker, free listener", marker, free, 403},
		{"path marker, premium listener", marker, prem, 200},
		{"token flag, free listener", flagged, free, 403},
		{"token flag, premium listener", flagged, prem, 200},
		{"premium lapsed", marker, lapsed, 403},
		{"revoked after issue (newer version in redis)", marker, revoked, 403},
		{"upgraded after issue (newer version in redis)", marker, upgraded, 200},
		{"older redis version does not override", marker, stale, 200},
		{"garbage token", marker, "Bearer x.y.z", 401},
	}
	for _, c := range cases {
		h := map[string]string{}
		if c.auth != "" {
			h["Authorization"] = c.auth
		}
		if r := do(t, "GET", c.url, h); r.status != c.want {
			t.Errorf("%s: %d, want %d (%s)", c.name, r.status, c.want, r.body)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
