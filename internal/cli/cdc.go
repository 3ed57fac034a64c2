package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/overture-music/overture/cdc"
	"github.com/overture-music/overture/internal/function"
	"github.com/overture-music/overture/internal/server"
	"github.com/overture-music/overture/internal/telemetry"
)

// runCDC runs the CDC relay standalone, as its Knative ContainerSource does:
// it reads DATABASE_URL's WAL and posts every event to K_SINK (injected by
// the SinkBinding). CDC_SLOT and CDC_PUBLICATION override the names; with
// LISTEN_ADDRESS set it also serves /health/* and /metrics there.
func runCDC(ctx context.Context, args []string) error {
	if len(args) != 0 {
		fmt.Fprintln(os.Stderr, "usage: overture cdc   (configured by DATABASE_URL, K_SINK, OVERTURE_IDENTITY_TOKEN_FILE, CDC_SLOT, CDC_PUBLICATION, LISTEN_ADDRESS)")
		return errUsage
	}
	cfg := function.Config()
	if cfg["DATABASE_URL"] == "" || cfg["K_SINK"] == "" {
		return errors.New("overture cdc: DATABASE_URL and K_SINK are required")
	}
	log := telemetry.NewLogger(os.Stderr, telemetry.LevelFromEnv()).With("component", "cdc")
	reg := prometheus.NewRegistry()
	if addr := cfg["LISTEN_ADDRESS"]; addr != "" {
		mux := http.NewServeMux()
		server.Health(mux, nil)
		server.Metrics(mux, reg, cfg[server.KeyMetricsToken])
		go func() {
			if err := server.Listen(ctx, addr, mux, log, nil); err != nil {
				log.Error("cdc health server", "error", err)
			}
		}()
	}
	return cdc.Run(ctx, cdc.Config{
		DatabaseURL: cfg["DATABASE_URL"],
		Slot:        cfg["CDC_SLOT"],
		Publication: cfg["CDC_PUBLICATION"],
		Publisher:   function.NewSinkPublisher(cfg), // K_SINK, with the token of OVERTURE_IDENTITY_TOKEN_FILE
		Log:         log,
		Registerer:  reg,
	})
}
