package cli

import (
	"context"
	"fmt"
	"net/http"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/overture-music/overture/internal/config"
	"github.com/overture-music/overture/internal/function"
	"github.com/overture-music/overture/internal/ingest"
	"github.com/overture-music/overture/internal/server"
	"github.com/overture-music/overture/internal/telemetry"
)

// runS3Source runs the S3 event source (ingest.Source) standalone, as its
// Knative Service does: versitygw's webhook posts ObjectCreated
// notifications to /s3/events?token=INGEST_WEBHOOK_SECRET, and the source
// publishes one event per object of INGEST_BUCKET to K_SINK with the token
// of OVERTURE_IDENTITY_TOKEN_FILE (identity ingest-source). In `make run`
// the platform hosts the same Source (internal/platform/deps.go).
func runS3Source(ctx context.Context, args []string) error {
	if len(args) != 0 {
		fmt.Fprintln(os.Stderr, "usage: overture s3-source   (configured by INGEST_WEBHOOK_SECRET, INGEST_BUCKET, K_SINK, OVERTURE_IDENTITY_TOKEN_FILE, LISTEN_ADDRESS, METRICS_TOKEN)")
		return errUsage
	}
	cfg := function.Config()
	r := config.NewReader(cfg)
	secret := r.Secret("INGEST_WEBHOOK_SECRET")
	bucket := r.StringOr("INGEST_BUCKET", ingest.DefaultUploadsBucket)
	r.URL("K_SINK")
	metrics := r.SecretOptional(server.KeyMetricsToken)
	if err := r.Err(); err != nil {
		return fmt.Errorf("overture s3-source: %w", err)
	}
	log := telemetry.NewLogger(os.Stderr, telemetry.LevelFromEnv()).With("component", ingest.SourceName)
	mux := http.NewServeMux()
	mux.Handle(ingest.WebhookPath, &ingest.Source{Bucket: bucket, Secret: secret.Reveal(), Publisher: function.NewSinkPublisher(cfg), Log: log})
	server.Health(mux, nil)
	server.Metrics(mux, prometheus.NewRegistry(), metrics.Reveal())
	return server.Listen(ctx, listenAddress(cfg), mux, log, nil)
}
