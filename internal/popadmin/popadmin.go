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

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/overture-music/overture/edge"
	"github.com/overture-music/overture/internal/config"
	"github.com/overture-music/overture/internal/lifecycle"
	"github.com/overture-music/overture/internal/steering"
)

// Driver is embedded by a function that drives the POPs; Join fills it in
// the function's Start. It carries the function's lifecycle base (the
// host's logger, what the function holds).
type Driver struct {
	lifecycle.Base
	POPs   []steering.POP
	Client edge.AdminClient
	name   string
}

// Read reads the driver's settings from r: CDN_POPS (name=region=url,…)
// and CDN_ADMIN_SECRET, both required (see steering.ReadAdminConfig); there
// is no development fallback, so the function does not start without them.
func (d *Driver) Read(r *config.Reader) { d.POPs, d.Client = steering.ReadAdminConfig(r) }

// Keys are the settings Read reads.
func Keys() []config.Key { return config.KeysOf(new(Driver).Read) }

// Join configures the driver of the function named name from cfg (see
// Read), together with more of the function's own settings read from the
// same cfg, so one failed start names every bad key.
func (d *Driver) Join(cfg map[string]string, name string, more ...func(*config.Reader)) error {
	d.name = name
	d.Begin()
	r := config.NewReader(cfg)
	d.Read(r)
	for _, m := range more {
		m(r)
	}
	if err := r.Err(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
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
