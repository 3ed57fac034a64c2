// Package function is the contract between Overture's CloudEvents functions and
// whatever hosts them.
//
// A function is a package under functions/<name>/ whose New() returns a value
// with the Knative func signature
//
//	Handle(ctx context.Context, e event.Event) (*event.Event, error)
//
// and, optionally, the lifecycle methods Knative func also recognises: Start,
// Stop, Ready and Alive. Every host starts a function the one way
// internal/lifecycle defines: it hands in the logger, metrics registry,
// database pools and publisher (a function embeds lifecycle.Base to receive
// them), and a failed Start releases what it acquired. The same value runs in two places without knowing
// which: standalone, behind the HTTP server in [Serve] (what a Knative Service
// runs), or in process, invoked by the embedded broker. A returned event is a
// reply: the host puts it back into the broker. Everything else a function wants
// to announce goes through the [Publisher] found in its context, or better,
// through the transactional outbox.
package function

import (
	"context"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/overture-music/overture/internal/lifecycle"
)

// Handler is the one method every function has.
type Handler interface {
	Handle(ctx context.Context, e event.Event) (*event.Event, error)
}

// Starter, Stopper, ReadinessReporter and LivenessReporter are the optional
// lifecycle, the same for functions and services (internal/lifecycle): a
// function that embeds lifecycle.Base gets Stop and Ready from it.
type (
	Starter           = lifecycle.Starter
	Stopper           = lifecycle.Stopper
	ReadinessReporter = lifecycle.Readier
	LivenessReporter  = lifecycle.Aliver
)

// Publisher sends events into the broker. It is the one publishing interface
// functions use: over HTTP to K_SINK when standalone, in process when embedded.
// Publish returns only after the broker has durably accepted every event.
type Publisher = lifecycle.Publisher

// PublisherFunc adapts a function to [Publisher].
type PublisherFunc func(ctx context.Context, events ...event.Event) error

// Publish calls f.
func (f PublisherFunc) Publish(ctx context.Context, events ...event.Event) error {
	return f(ctx, events...)
}

// WithPublisher returns a context carrying p; hosts call it for the contexts they
// pass to Start and Handle.
func WithPublisher(ctx context.Context, p Publisher) context.Context {
	return lifecycle.WithPublisher(ctx, p)
}

// PublisherFrom returns the publisher the host put into ctx, or nil.
func PublisherFrom(ctx context.Context) Publisher { return lifecycle.PublisherFrom(ctx) }

// Start hands env to h and starts it (see lifecycle.Start): a failed start
// has released whatever h acquired.
func Start(ctx context.Context, h Handler, env lifecycle.Env, cfg map[string]string) error {
	return lifecycle.Start(ctx, h, env, cfg)
}

// Stop stops h and releases what it holds (see lifecycle.Stop).
func Stop(ctx context.Context, h Handler) error { return lifecycle.Stop(ctx, h) }

// Ready reports h's readiness: its held dependencies answer and its own
// Ready agrees; a function with neither is ready.
func Ready(ctx context.Context, h Handler) (bool, error) { return lifecycle.Ready(ctx, h) }

// Alive reports h's liveness; functions without [LivenessReporter] are alive.
func Alive(ctx context.Context, h Handler) (bool, error) { return lifecycle.Alive(ctx, h) }
