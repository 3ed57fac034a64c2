package cli

import (
	"context"
	"fmt"
	"slices"

	"github.com/overture-music/overture/internal/config"
	"github.com/overture-music/overture/internal/function"
	"github.com/overture-music/overture/internal/platform"
	"github.com/overture-music/overture/internal/server"
)

// runServe runs one HTTP service standalone, as its Knative Service does:
// `overture serve NAME` listens on LISTEN_ADDRESS, else on PORT (what Knative
// Serving sets), else on 127.0.0.1:8080.
func runServe(ctx context.Context, args []string) error {
	s, err := standaloneTarget(args, "serve", "service", serviceNames, platform.Service)
	if err != nil {
		return err
	}
	cfg := function.Config()
	host, err := config.Parse[function.HostConfig](cfg)
	if err != nil {
		return fmt.Errorf("serve %s: %w", s.Name(), err)
	}
	if host.Sink != "" {
		// A service that publishes (the listens service) posts to the broker
		// with its own identity token, as a standalone function does.
		ctx = function.WithPublisher(ctx, host.Publisher())
	}
	return server.Run(ctx, s, listenAddress(cfg), cfg, standaloneLogger("service", s.Name()), nil)
}

// listenAddress is LISTEN_ADDRESS, else :$PORT, else the Knative func default.
func listenAddress(cfg map[string]string) string {
	r := config.NewReader(cfg)
	addr, port := r.StringOr("LISTEN_ADDRESS", ""), r.StringOr("PORT", "")
	switch {
	case addr != "":
		return addr
	case port != "":
		return ":" + port
	}
	return function.DefaultListenAddress
}

func serviceNames() []string {
	var names []string
	for _, s := range platform.Services() {
		names = append(names, s.Name())
	}
	slices.Sort(names)
	if len(names) == 0 {
		return []string{"(none yet)"}
	}
	return names
}
