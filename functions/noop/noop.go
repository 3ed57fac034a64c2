// Package noop is a function that accepts every event and does nothing. It
// exists to measure the platform itself: the broker's delivery rate and
// latency and a function binary's cold start are measured against it, so that
// no handler work hides in the figures.
package noop

import (
	"context"

	"github.com/cloudevents/sdk-go/v2/event"
)

// Noop acknowledges every event.
type Noop struct{}

// New returns the function.
func New() *Noop { return &Noop{} }

// Handle accepts e and replies nothing.
func (*Noop) Handle(context.Context, event.Event) (*event.Event, error) { return nil, nil }
