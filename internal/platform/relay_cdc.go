package platform

import (
	"context"

	"github.com/overture-music/overture/cdc"
)

// CDC configuration keys (optional; cdc's defaults apply when unset).
const (
	KeyCDCSlot        = "CDC_SLOT"
	KeyCDCPublication = "CDC_PUBLICATION"
)

func init() { relays["cdc"] = cdcRelay }

// cdcRelay reads outbox inserts (and catalog row changes) from the WAL
// through logical replication instead of polling the outbox table.
func cdcRelay(env RelayEnv) (Relay, error) {
	cfg := cdc.Config{
		DatabaseURL: env.Cfg[KeyDatabaseURL],
		Slot:        env.Cfg[KeyCDCSlot],
		Publication: env.Cfg[KeyCDCPublication],
		Publisher:   env.Publisher,
		Log:         env.Log,
		Registerer:  env.Registerer,
	}
	return relayFunc(func(ctx context.Context) error { return cdc.Run(ctx, cfg) }), nil
}

type relayFunc func(ctx context.Context) error

func (f relayFunc) Run(ctx context.Context) error { return f(ctx) }
