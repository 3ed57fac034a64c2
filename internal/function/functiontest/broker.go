package functiontest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/overture-music/overture/internal/broker"
	"github.com/overture-music/overture/internal/function"
	"github.com/overture-music/overture/internal/manifest"
	"github.com/overture-music/overture/internal/testenv"
)

// Objects parses yaml, one or more Knative documents, as one manifest file.
func Objects(t testing.TB, yaml string) *manifest.Set {
	t.Helper()
	set := &manifest.Set{}
	if err := set.Add("test.yaml", []byte(yaml)); err != nil {
		t.Fatalf("test manifests: %v", err)
	}
	return set
}

// RunBroker creates the embedded broker from cfg, with subscribers resolved
// by Service name in handlers, and runs it until the test ends.
func RunBroker(t testing.TB, cfg broker.Config, handlers map[string]function.Handler) *broker.Broker {
	t.Helper()
	cfg.Resolve = func(name string) (function.Handler, bool) {
		h, ok := handlers[name]
		return h, ok
	}
	b, err := broker.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("broker: %v", err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("broker run: %v", err)
		}
	})
	return b
}

// Recorder is a function that records the events it accepts. After Fail it
// refuses every event with that error, as a broken subscriber does, until
// Fail(nil).
type Recorder struct {
	mu     sync.Mutex
	events []event.Event
	fail   error
}

// Handle records e, or refuses it while the recorder is failing.
func (r *Recorder) Handle(_ context.Context, e event.Event) (*event.Event, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return nil, r.fail
	}
	r.events = append(r.events, e)
	return nil, nil
}

// Fail makes Handle refuse events with err; nil accepts them again.
func (r *Recorder) Fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fail = err
}

// Events returns the events accepted so far, in order.
func (r *Recorder) Events() []event.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]event.Event(nil), r.events...)
}

// Wait waits until the recorder has accepted exactly n events and returns
// them; more than n, or fewer after within, fails the test.
func (r *Recorder) Wait(t testing.TB, n int, within time.Duration) []event.Event {
	t.Helper()
	var got []event.Event
	// At least two minutes: tests run with -race beside other packages.
	if !testenv.Poll(max(within, 2*time.Minute), func() bool { got = r.Events(); return len(got) >= n }) {
		t.Fatalf("%d events delivered after %s, want %d", len(got), max(within, 2*time.Minute), n)
	}
	if len(got) > n {
		t.Fatalf("%d events delivered, want %d", len(got), n)
	}
	return got
}
