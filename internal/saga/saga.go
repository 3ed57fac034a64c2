// Package saga holds what the premium-subscription saga's participants share:
// the mode switch (choreography or orchestration), the step names of the
// orchestrated saga, and how they build the CloudEvents they emit.
//
// Both modes run on the same Trigger YAML: every participant is subscribed to
// the events of both modes, and ignores the ones of the mode it is not in.
// That keeps the switch a configuration value (SAGA_MODE) instead of two sets
// of manifests, at the price of some deliveries that are acknowledged and
// dropped. docs/saga.md explains the two flows.
package saga

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
)

// Mode selects how the saga is coordinated.
type Mode string

// Modes.
const (
	Choreography  Mode = "choreography"
	Orchestration Mode = "orchestration"
)

// ConfigKey is the cfg key naming the mode.
const ConfigKey = "SAGA_MODE"

// Steps of an orchestrated saga (SagaCommand.Step).
const (
	StepCharge  = "charge"  // pivot: capture the payment
	StepApply   = "apply"   // record the paid period (or release / past_due)
	StepGrant   = "grant"   // grant premium (retriable)
	StepRefund  = "refund"  // compensation of charge
	StepRelease = "release" // compensation of the pending reservation
)

// NewEvent builds a CloudEvent with JSON data. id must be deterministic for the
// fact it announces (e.g. "payment.completed/<payment id>"), so that a
// consumer deduplicating by source+id also drops a re-emission.
func NewEvent(source, typ, id, subject string, data any) (event.Event, error) {
	e := event.New()
	e.SetID(id)
	e.SetSource(source)
	e.SetType(typ)
	e.SetTime(time.Now().UTC())
	if subject != "" {
		e.SetSubject(subject)
		e.SetExtension("partitionkey", subject)
	}
	if err := e.SetData(event.ApplicationJSON, data); err != nil {
		return e, fmt.Errorf("encode %s: %w", typ, err)
	}
	return e, nil
}

// Decode unmarshals e's data into v, saying which event failed.
func Decode(e event.Event, v any) error {
	if err := json.Unmarshal(e.Data(), v); err != nil {
		return fmt.Errorf("decode %s %s: %w", e.Type(), e.ID(), err)
	}
	return nil
}
