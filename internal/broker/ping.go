package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/robfig/cron/v3"

	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/manifest"
	"github.com/overture-music/overture/internal/telemetry"
)

// pinger fires one PingSource.
type pinger struct {
	b    *Broker
	p    *manifest.PingSource
	name string
	st   *brokerState // sink is a Broker
	t    *target      // sink is a Service or URI
	c    *cron.Cron
}

func (b *Broker) newPinger(p *manifest.PingSource) (*pinger, error) {
	pg := &pinger{b: b, p: p, name: p.Metadata.Namespace + "/" + p.Metadata.Name}
	if r := p.Spec.Sink.Ref; r != nil && r.Kind == "Broker" {
		ns := r.Namespace
		if ns == "" {
			ns = p.Metadata.Namespace
		}
		st, ok := b.brokers[ns+"/"+r.Name]
		if !ok {
			return nil, fmt.Errorf("sink Broker %s/%s is not defined", ns, r.Name)
		}
		pg.st = st
	} else {
		t, err := b.resolve(p.Spec.Sink, p.Metadata.Namespace)
		if err != nil {
			return nil, fmt.Errorf("sink: %w", err)
		}
		pg.t = t
	}
	pg.c = cron.New(cron.WithParser(manifest.CronParser), cron.WithLocation(p.Location()))
	if _, err := pg.c.AddFunc(p.ScheduleOrDefault(), pg.fire); err != nil {
		return nil, fmt.Errorf("schedule %q: %w", p.Spec.Schedule, err)
	}
	return pg, nil
}

func (pg *pinger) start(ctx context.Context) { pg.c.Start() }

func (pg *pinger) stop() { <-pg.c.Stop().Done() }

// Event builds the CloudEvent a tick emits, as Knative's PingSource adapter does.
func (pg *pinger) event(now time.Time) event.Event {
	p := pg.p
	e := event.New()
	e.SetID(uuid.NewString())
	e.SetType(eventtype.Ping)
	e.SetSource(p.Source())
	e.SetTime(now)
	if data := p.DataBytes(); len(data) > 0 {
		ct := p.Spec.ContentType
		if ct == "" {
			ct = "text/plain"
			if json.Valid(data) {
				ct = "application/json"
			}
		}
		e.SetDataContentType(ct)
		e.DataEncoded = data
	}
	if o := p.Spec.CEOverrides; o != nil {
		for k, v := range o.Extensions {
			e.SetExtension(k, v)
		}
	}
	e.SetExtension(telemetry.TraceparentExtension, telemetry.NewTraceparent())
	return e
}

func (pg *pinger) fire() {
	b := pg.b
	e := pg.event(time.Now())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ctx = telemetry.FromEvent(ctx, e)
	b.m.pings.WithLabelValues(pg.name).Inc()
	if pg.st != nil {
		if err := b.ingestTo(ctx, pg.st, []event.Event{e}); err != nil {
			b.log.ErrorContext(ctx, "broker: pingsource tick not stored", "pingsource", pg.name, "error", err)
		}
		return
	}
	// A Service sink gets the tick directly, as the PingSource adapter sends
	// it: no broker, no retries.
	if _, f := pg.t.deliver(ctx, e, 30*time.Second); f != nil {
		b.log.ErrorContext(ctx, "broker: pingsource sink failed", "pingsource", pg.name, "sink", pg.t.dest, "error", f.Error())
	}
}
