// Package function is the contract between Overture's CloudEvents functions and
// whatever hosts them.
//
// A function is a package under functions/<name>/ whose New() returns a value
// with the Knative func signature
//
//	Handle(ctx context.Context, e event.Event) (*event.Event, error)
//
// and, optionally, the lifecycle methods Knative func also recognises: Start,
// Stop, Ready and Alive. The same value runs in two places without knowing
// which: standalone, behind the HTTP server in [Serve] (what a Knative Service
// runs), or in process, invoked by the embedded broker. A returned event is a
// reply: the host puts it back into the broker. Everything else a function wants
// to announce goes through the [Publisher] found in its context, or better,
// through the transactional outbox.
package function

import (
	"context"

	"github.com/cloudevents/sdk-go/v2/event"
)

// Handler is the one method every function has.
type Handler interface {
	Handle(ctx context.Context, e event.Event) (*event.Event, error)
}

// Starter is implemented by functions that need set-up (pools, clients). cfg is
// the process environment plus host-provided settings, as Knative func passes it.
type Starter interface {
	Start(ctx context.Context, cfg map[string]string) error
}

// Stopper is implemented by functions that hold resources to release.
type Stopper interface {
	Stop(ctx context.Context) error
}

// ReadinessReporter reports whether a function can take events.
type ReadinessReporter interface {
	Ready(ctx context.Context) (bool, error)
}

// LivenessReporter reports whether a function is still healthy.
type LivenessReporter interface {
	Alive(ctx context.Context) (bool, error)
}

// Publisher sends events into the broker. It is the one publishing interface
// functions use: over HTTP to K_SINK when standalone, in process when embedded.
// Publish returns only after the broker has durably accepted every event.
type Publisher interface {
	Publish(ctx context.Context, events ...event.Event) error
}

// PublisherFunc adapts a function to [Publisher].
type PublisherFunc func(ctx context.Context, events ...event.Event) error

// Publish calls f.
func (f PublisherFunc) Publish(ctx context.Context, events ...event.Event) error {
	return f(ctx, events...)
}

type publisherKey struct{}

// WithPublisher returns a context carrying p; hosts call it for the contexts they
// pass to Start and Handle.
func WithPublisher(ctx context.Context, p Publisher) context.Context {
	return context.WithValue(ctx, publisherKey{}, p)
}

// PublisherFrom returns the publisher the host put into ctx, or nil.
func PublisherFrom(ctx context.Context) Publisher {
	p, _ := ctx.Value(publisherKey{}).(Publisher)
	return p
}

// Start calls h.Start when h implements [Starter].
func Start(ctx context.Context, h Handler, cfg map[string]string) error {
	if s, ok := h.(Starter); ok {
		return s.Start(ctx, cfg)
	}
	return nil
}

// Stop calls h.Stop when h implements [Stopper].
func Stop(ctx context.Context, h Handler) error {
	if s, ok := h.(Stopper); ok {
		return s.Stop(ctx)
	}
	return nil
}

// Ready reports h's readiness; functions without [ReadinessReporter] are ready.
func Ready(ctx context.Context, h Handler) (bool, error) {
	if r, ok := h.(ReadinessReporter); ok {
		return r.Ready(ctx)
	}
	return true, nil
}

// Alive reports h's liveness; functions without [LivenessReporter] are alive.
func Alive(ctx context.Context, h Handler) (bool, error) {
	if r, ok := h.(LivenessReporter); ok {
		return r.Alive(ctx)
	}
	return true, nil
}
