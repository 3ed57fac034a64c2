// Package brokertest holds the Knative manifests that tests and benchmarks
// run the embedded broker on, so that the broker's own tests, its benchmark
// and the benchmarks of its producers (cdc) describe the same broker in the
// same words. It imports nothing of the broker, so package broker's internal
// tests can use it too.
package brokertest

import "fmt"

// BrokerYAML is the Broker every test's Triggers attach to: "default" in
// namespace overture, of the Kafka class, as brokers/ deploys it.
const BrokerYAML = `
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata:
  name: default
  namespace: overture
  annotations: {eventing.knative.dev/broker.class: Kafka}
`

// NoopYAML is BrokerYAML and one Trigger, "noop", that delivers every event
// whose type starts with typePrefix to the function noop (functions/noop):
// the benchmarks' subscriber, which does nothing.
func NoopYAML(typePrefix string) string {
	return BrokerYAML + fmt.Sprintf(`---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: noop, namespace: overture}
spec:
  broker: default
  filters: [{prefix: {type: %s}}]
  subscriber: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: noop}}
`, typePrefix)
}

// AllowYAML is an EventPolicy for Broker overture/default that lets subject
// (a trailing * is a wildcard) send the events whose type starts with
// typePrefix ("" for every type): tests that are not about authorization
// allow their producers with it, as brokers/eventpolicies.yaml allows
// Overture's.
func AllowYAML(name, subject, typePrefix string) string {
	filters := ""
	if typePrefix != "" {
		filters = fmt.Sprintf("\n  filters: [{prefix: {type: %s}}]", typePrefix)
	}
	return fmt.Sprintf(`
---
apiVersion: eventing.knative.dev/v1alpha1
kind: EventPolicy
metadata: {name: %s, namespace: overture}
spec:
  to: [{ref: {apiVersion: eventing.knative.dev/v1, kind: Broker, name: default}}]
  from: [{sub: %q}]%s
`, name, subject, filters)
}
