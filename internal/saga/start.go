package saga

import (
	"context"
	"fmt"

	"github.com/overture-music/overture/internal/config"
	"github.com/overture-music/overture/internal/lifecycle"
	"github.com/overture-music/overture/internal/postgres"
)

// Config is what every saga participant reads: its database and the mode.
type Config struct {
	DatabaseURL string // DATABASE_URL, required
	Mode        Mode   // SAGA_MODE, choreography when unset
}

// KeyDatabaseURL is the participants' database.
const KeyDatabaseURL = "DATABASE_URL"

// Read fills c from r (see config.Reader): every problem is recorded on r.
func (c *Config) Read(r *config.Reader) {
	c.DatabaseURL = r.String(KeyDatabaseURL)
	switch m := Mode(r.StringOr(ConfigKey, string(Choreography))); m {
	case Choreography, Orchestration:
		c.Mode = m
	default:
		r.Fail(ConfigKey, "%q: want choreography or orchestration", string(m))
	}
}

// Keys are the settings every participant reads.
func Keys() []config.Key { return config.KeysOf(new(Config).Read) }

// Participant is what every saga function embeds: the lifecycle base (the
// host's logger, the pool it holds, Stop and Ready, which follow the
// database) and its mode.
type Participant struct {
	lifecycle.Base
	Mode Mode
	Pool *postgres.Pool
}

// Join reads the participant's Config from cfg (plus whatever more reads
// on the same Reader), opens its database through the base and runs migrate
// on it. name prefixes the errors. A failed Join has released the pool.
func (p *Participant) Join(ctx context.Context, cfg map[string]string, name string, migrate postgres.Migrator, more ...func(*config.Reader)) error {
	p.Begin()
	r := config.NewReader(cfg)
	var c Config
	c.Read(r)
	for _, m := range more {
		m(r)
	}
	if err := r.Err(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	pool, err := p.OpenPool(ctx, c.DatabaseURL, migrate)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	p.Mode, p.Pool = c.Mode, pool
	return nil
}
