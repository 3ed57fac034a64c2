package cli

import (
	"context"
	"fmt"
	"net/http"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/overture-music/overture/cdc"
	"github.com/overture-music/overture/internal/config"
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
	r := config.NewReader(cfg)
	c := cdc.ReadConfig(r)
	r.URL("K_SINK") // where NewSinkPublisher posts: checked here
	if err := r.Err(); err != nil {
		return fmt.Errorf("overture cdc: %w", err)
	}
	log := telemetry.NewLogger(os.Stderr, telemetry.LevelFromEnv()).With("component", "cdc")
	reg := prometheus.NewRegistry()
	if addr := r.StringOr("LISTEN_ADDRESS", ""); addr != "" {
		mux := http.NewServeMux()
		server.Health(mux, nil)
		server.Metrics(mux, reg, r.SecretOptional(server.KeyMetricsToken).Reveal())
		go func() {
			if err := server.Listen(ctx, addr, mux, log, nil); err != nil {
				log.Error("cdc health server", "error", err)
			}
		}()
	}
	c.Publisher = function.NewSinkPublisher(cfg) // K_SINK, with the token of OVERTURE_IDENTITY_TOKEN_FILE
	c.Log, c.Registerer = log, reg
	return cdc.Run(ctx, c)
}
