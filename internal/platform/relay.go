package platform

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/overture-music/overture/internal/function"
	"github.com/overture-music/overture/internal/outbox"
)

// DefaultRelay is the outbox relay used when OUTBOX_RELAY is unset.
const DefaultRelay = "cdc"

// RelayEnv is what a relay gets from the platform.
type RelayEnv struct {
	Cfg        map[string]string
	Pool       *pgxpool.Pool
	Publisher  function.Publisher
	Log        *slog.Logger
	Registerer prometheus.Registerer
}

// Relay moves committed outbox rows (and, for CDC, row changes) into the
// broker until ctx ends.
type Relay interface {
	Run(ctx context.Context) error
}

// relays are the OUTBOX_RELAY choices: "poll" (outbox.Relay, LISTEN/NOTIFY
// plus polling) and "cdc" (cdc.Run, logical replication; relay_cdc.go).
var relays = map[string]func(RelayEnv) (Relay, error){
	"poll": pollRelay,
}

func pollRelay(env RelayEnv) (Relay, error) {
	return &outbox.Relay{Pool: env.Pool, Publisher: env.Publisher, Log: env.Log.With("component", "outbox-relay")}, nil
}

// newRelay returns the relay named name ("" = DefaultRelay).
func newRelay(name string, env RelayEnv) (Relay, string, error) {
	if name == "" {
		name = DefaultRelay
	}
	mk, ok := relays[name]
	if !ok {
		names := make([]string, 0, len(relays))
		for n := range relays {
			names = append(names, n)
		}
		slices.Sort(names)
		return nil, "", fmt.Errorf("%s=%q: want one of %s", KeyOutboxRelay, name, strings.Join(names, ", "))
	}
	r, err := mk(env)
	if err != nil {
		return nil, "", fmt.Errorf("outbox relay %s: %w", name, err)
	}
	return r, name, nil
}
