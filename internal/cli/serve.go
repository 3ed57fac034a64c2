package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"

	"github.com/overture-music/overture/internal/function"
	"github.com/overture-music/overture/internal/platform"
	"github.com/overture-music/overture/internal/server"
	"github.com/overture-music/overture/internal/telemetry"
)

// runServe runs one HTTP service standalone, as its Knative Service does:
// `overture serve NAME` listens on LISTEN_ADDRESS, else on PORT (what Knative
// Serving sets), else on 127.0.0.1:8080.
func runServe(ctx context.Context, args []string) error {
	if len(args) != 1 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintf(os.Stderr, "usage: overture serve NAME\n\nservices: %s\n", strings.Join(serviceNames(), ", "))
		return errUsage
	}
	s, ok := platform.Service(args[0])
	if !ok {
		fmt.Fprintf(os.Stderr, "overture serve: no service %q; services: %s\n", args[0], strings.Join(serviceNames(), ", "))
		return errUsage
	}
	cfg := function.Config()
	addr := listenAddress(cfg)
	log := telemetry.NewLogger(os.Stderr, telemetry.LevelFromEnv()).With("service", s.Name())
	slog.SetDefault(log)
	return server.Run(ctx, s, addr, cfg, log, nil)
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
