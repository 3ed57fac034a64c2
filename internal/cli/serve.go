package cli

import (
	"context"
	"slices"

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
	if cfg["K_SINK"] != "" {
		// A service that publishes (the listens service) posts to the broker
		// with its own identity token, as a standalone function does.
		ctx = function.WithPublisher(ctx, function.NewSinkPublisher(cfg))
	}
	return server.Run(ctx, s, listenAddress(cfg), cfg, standaloneLogger("service", s.Name()), nil)
}

// listenAddress is LISTEN_ADDRESS, else :$PORT, else the Knative func default.
func listenAddress(cfg map[string]string) string {
	if a := cfg["LISTEN_ADDRESS"]; a != "" {
		return a
	}
	if p := cfg["PORT"]; p != "" {
		return ":" + p
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
