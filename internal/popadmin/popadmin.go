// Package popadmin is what the functions that drive the CDN POPs' admin API
// share (cdn-warm pushes a published track, cdn-purge removes replaced
// renditions): the POP list and the admin client read from cfg, the
// function's logger, and the check and decoding of the event that wakes
// them. It exists so the two start and validate alike; each keeps its own
// fan-out, because a push goes to one owning POP per region and a purge to
// every POP.
package popadmin

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/overture-music/overture/edge"
	"github.com/overture-music/overture/internal/steering"
	"github.com/overture-music/overture/internal/telemetry"
)

// Driver is embedded by a function that drives the POPs; Join fills it in
// the function's Start.
type Driver struct {
	// Log receives the function's logs; a JSON logger on stderr named after
	// the function when nil.
	Log    *slog.Logger
	POPs   []steering.POP
	Client edge.AdminClient
	name   string
}

// Join configures the driver of the function named name from cfg: CDN_POPS
// (name=region=url,…) and CDN_ADMIN_SECRET, both required (see
// steering.AdminConfig); there is no development fallback, so the function
// does not start without them.
func (d *Driver) Join(cfg map[string]string, name string) error {
	d.name = name
	if d.Log == nil {
		d.Log = telemetry.NewLogger(os.Stderr, telemetry.LevelFromEnv()).With("function", name)
	}
	pops, client, err := steering.AdminConfig(cfg)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	d.POPs, d.Client = pops, client
	return nil
}

// Decode checks that e has type typ and decodes its data into data, with
// errors that name the function and the event; such an event is one the
// function's trigger should never have sent it.
func (d *Driver) Decode(e event.Event, typ string, data any) error {
	if e.Type() != typ {
		return fmt.Errorf("%s: unexpected event type %s", d.name, e.Type())
	}
	if err := e.DataAs(data); err != nil {
		return fmt.Errorf("%s: decode %s: %w", d.name, e.ID(), err)
	}
	return nil
}
