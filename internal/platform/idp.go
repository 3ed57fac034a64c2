package platform

import (
	"context"
	"fmt"

	"github.com/overture-music/overture/internal/idp"
)

// startIdP starts make run's local OIDC provider (the offline stand-in for
// Google and co.) before the services, since it sets LOCAL_OIDC_ISSUER for
// auth. It lives until Stop, in reverse order with the other components.
// LOCAL_IDP=off or a configured LOCAL_OIDC_ISSUER skips it.
func (p *Platform) startIdP(ctx context.Context) error {
	if p.cfg["LOCAL_OIDC_ISSUER"] != "" || p.cfg["LOCAL_IDP"] == "off" {
		return nil
	}
	ictx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	iss, err := idp.StartDev(ictx, p.cfg, p.log.With("component", "idp"))
	if err != nil {
		cancel()
		return fmt.Errorf("local identity provider: %w", err)
	}
	if iss == "" {
		cancel()
		return nil
	}
	done := make(chan struct{})
	close(done)
	c := &component{name: "local identity provider", done: done, cancel: cancel}
	p.mu.Lock()
	p.running = append(p.running, c)
	p.mu.Unlock()
	p.pops = append(p.pops, dependency{"local OIDC provider", iss, true})
	return nil
}
