package steering

import (
	"context"
	"testing"
	"time"

	"github.com/overture-music/overture/internal/steering/steeringtest"
)

// Measured RTT counts: the listener's own region is configured as nearest,
// but its POP is 40 ms away in practice, so the neighbour region wins.
func TestMeasuredLatencyOutweighsConfiguredProximity(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "", func(c *Config) { c.Latency = map[string]float64{"eu-west>eu-central": 20} },
		POP{Name: "home", Region: "eu-west"}, POP{Name: "next", Region: "eu-central"})
	// Re-point "home" through a 40 ms proxy.
	f.svc.pops[0].URL = "http://" + steeringtest.DelayProxy(t, f.pops["home"].Addr(), 40*time.Millisecond, 0)
	for range 4 {
		f.svc.Poll(context.Background())
	}
	pops, ch := f.svc.HealthMap()
	if pops[0].RTTMS < 35 || pops[1].RTTMS > 20 {
		t.Fatalf("measured RTTs: home %.1f ms, next %.1f ms", pops[0].RTTMS, pops[1].RTTMS)
	}
	if ch["eu-west"] != "eu-central" {
		t.Fatalf("eu-west listeners go to %q; 20 ms configured + ~0 measured should beat 0 + 40 ms", ch["eu-west"])
	}
}
