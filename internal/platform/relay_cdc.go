package platform

import (
	"cmp"
	"context"
	"net/url"
	"regexp"
	"strings"

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
		Slot:        cmp.Or(env.Cfg[KeyCDCSlot], slotFor(env.Cfg[KeyDatabaseURL])),
		Publication: env.Cfg[KeyCDCPublication],
		Publisher:   env.Publisher,
		Log:         env.Log,
		Registerer:  env.Registerer,
	}
	return relayFunc(func(ctx context.Context) error {
		err := cdc.Run(ctx, cfg)
		if ctx.Err() != nil {
			// Stopped by the platform, possibly mid start-up (while migrating):
			// that is a stop, not a failure.
			return nil
		}
		return err
	}), nil
}

type relayFunc func(ctx context.Context) error

func (f relayFunc) Run(ctx context.Context) error { return f(ctx) }

var nonSlotChars = regexp.MustCompile(`[^a-z0-9_]`)

// slotFor names the replication slot after the database: slots are
// cluster-wide, so two databases on one server (a dev and a test database,
// say) must not share the default name.
func slotFor(databaseURL string) string {
	u, err := url.Parse(databaseURL)
	db := ""
	if err == nil {
		db = strings.TrimPrefix(u.Path, "/")
	}
	if db == "" || db == Database {
		return cdc.DefaultSlot
	}
	name := cdc.DefaultSlot + "_" + nonSlotChars.ReplaceAllString(strings.ToLower(db), "_")
	return name[:min(len(name), 63)]
}
