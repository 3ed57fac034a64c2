package platform

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/overture-music/overture/edge"
)

// KeyCDNPOPs lists external CDN points of presence (name=region=url,…); when
// set in the environment, the platform starts none of its own (its default
// lists the three it starts).
const KeyCDNPOPs = "CDN_POPS"

// startCDN starts the three loopback CDN POPs of `make run` (edge.StartDev,
// one per region, disk tiers under DataDir/cdn) so that the steering service
// has somewhere to send listeners. Skipped when CDN_POPS names real ones.
func (p *Platform) startCDN(ctx context.Context) error {
	// The environment, not cfg: cfg's CDN_POPS defaults to these POPs.
	if !p.opts.DevPOPs || p.opts.Env[KeyCDNPOPs] != "" {
		return nil
	}
	stop, err := edge.StartDev(ctx, maps.Clone(p.cfg), p.opts.DataDir, p.log.With("component", "edge"))
	if err != nil {
		return fmt.Errorf("CDN POPs: %w", err)
	}
	done := make(chan struct{})
	close(done)
	c := &component{name: "CDN POPs", done: done}
	c.cancel = func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := stop(sctx); err != nil {
			c.err = err
		}
	}
	p.mu.Lock()
	p.running = append(p.running, c)
	p.mu.Unlock()
	for _, pop := range edge.DevPOPs {
		p.pops = append(p.pops, dependency{"CDN POP " + pop.Name + " (" + pop.Region + ")", "http://" + pop.Addr, true})
	}
	return nil
}
