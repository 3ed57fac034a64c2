// Package eventtype is Overture's event catalog: every CloudEvent type the
// system emits, the Go struct of its data, who produces it and who consumes it.
//
// It is the single place to look up an event. docs/events.md is generated from
// it (go run ./cmd/overture events doc > docs/events.md, checked by a test), and
// the flow test in triggers/ checks every Trigger against it: a trigger filters
// only on types listed here with a producer, every emitted type is consumed or
// declared Terminal.
//
// Type names are reverse-DNS with a version suffix, so that a breaking change
// to a payload is a new type ("...payment.completed.v2") living beside the old.
package eventtype

import (
	"cmp"
	"fmt"
	"reflect"
	"slices"
)

// Prefix starts every Overture event type.
const Prefix = "music.overture."

// Spec describes one event type.
type Spec struct {
	// Type is the CloudEvents type attribute.
	Type string
	// Data is a zero value of the payload struct (JSON-encoded as data).
	Data any
	// Doc says in a sentence what happened.
	Doc string
	// Producers and Consumers name functions or services (their func.yaml name,
	// "cdc", "pingsource" …).
	Producers []string
	Consumers []string
	// Outbox marks a type its producers write into the transactional outbox
	// (outbox.Write, in the transaction of the state change it announces):
	// the outbox relay (CDC, or the polling relay), with identity [Relay],
	// publishes it into the broker, and the producers themselves do not.
	// A type without Outbox is published directly by its producers (in
	// process through the publisher the platform binds to their identity,
	// or over HTTP to K_SINK with their token).
	Outbox bool
	// Terminal marks an event with no consumer on purpose (an audit fact, a
	// read-model input kept for later use); Doc should say why.
	Terminal bool
}

// Relay is the workload identity (identity.Subject) both outbox relays
// publish with: cdc/ on Knative and in `make run` (OUTBOX_RELAY=cdc), and the
// polling relay (OUTBOX_RELAY=poll) in its place.
const Relay = "cdc"

// PingSourceProducer is the producer name of types a PingSource emits: the
// PingSources themselves publish them (their OIDC identity, an EventPolicy's
// from.ref), and the embedded broker's ticks are its own.
const PingSourceProducer = "pingsource"

// Publishers returns the workloads the broker must let publish s: [Relay]
// for an Outbox type, else its producers. The EventPolicies in brokers/ allow
// exactly these (checked by the flow test in triggers/).
func (s Spec) Publishers() []string {
	if s.Outbox {
		return []string{Relay}
	}
	return slices.Clone(s.Producers)
}

// All returns the catalog sorted by type. Each domain keeps its specs in its own
// file of this package.
func All() []Spec {
	var all []Spec
	for _, group := range [][]Spec{platformSpecs, authSpecs, subscriptionSpecs, sagaSpecs, catalogSpecs, cdnSpecs, ingestSpecs, statsSpecs, recommendSpecs} {
		all = append(all, group...)
	}
	slices.SortFunc(all, func(a, b Spec) int { return cmp.Compare(a.Type, b.Type) })
	return all
}

// Lookup returns the spec of typ.
func Lookup(typ string) (Spec, bool) {
	for _, s := range All() {
		if s.Type == typ {
			return s, true
		}
	}
	return Spec{}, false
}

// Validate checks the catalog's own consistency: unique, well-formed names, a
// data struct, a producer and a consumer (or Terminal) for each. A test runs
// it, so a catalog that breaks these rules does not build green.
func Validate() error { return validate(All()) }

func validate(specs []Spec) error {
	seen := map[string]bool{}
	for _, s := range specs {
		if seen[s.Type] {
			return fmt.Errorf("event type %s listed twice", s.Type)
		}
		seen[s.Type] = true
		if !validName(s.Type) && s.Type != Ping {
			return fmt.Errorf("event type %q is not reverse-DNS with a version suffix", s.Type)
		}
		if s.Data == nil || reflect.TypeOf(s.Data).Kind() != reflect.Struct {
			return fmt.Errorf("event type %s: Data must be a struct value", s.Type)
		}
		if len(s.Producers) == 0 {
			return fmt.Errorf("event type %s has no producer", s.Type)
		}
		if len(s.Consumers) == 0 && !s.Terminal {
			return fmt.Errorf("event type %s has no consumer and is not Terminal", s.Type)
		}
	}
	return nil
}
