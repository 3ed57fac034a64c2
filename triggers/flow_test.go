package triggers

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/overture-music/overture/functions"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/identity"
	"github.com/overture-music/overture/internal/manifest"
)

// load reads brokers/, triggers/ and every func.yaml under functions/, as
// make deploy applies them.
func load(t *testing.T) *manifest.Set {
	t.Helper()
	set, err := manifest.LoadDir("../brokers", ".", "../functions")
	if err != nil {
		t.Fatalf("manifests do not load: %v", err)
	}
	return set
}

// typeConstraints collects what a trigger's filter says about the type
// attribute: exact values, prefixes and suffixes, wherever they appear.
type typeConstraints struct{ exact, prefix, suffix []string }

func (c *typeConstraints) empty() bool {
	return len(c.exact)+len(c.prefix)+len(c.suffix) == 0
}

func (c *typeConstraints) addSpec(f manifest.FilterSpec) {
	if v, ok := f.Exact["type"]; ok {
		c.exact = append(c.exact, v)
	}
	if v, ok := f.Prefix["type"]; ok {
		c.prefix = append(c.prefix, v)
	}
	if v, ok := f.Suffix["type"]; ok {
		c.suffix = append(c.suffix, v)
	}
	for _, s := range slices.Concat(f.All, f.Any) {
		c.addSpec(s)
	}
	// A "not" clause excludes types; it does not say what the trigger wants.
}

func constraintsOf(tr *manifest.Trigger) typeConstraints {
	var c typeConstraints
	if len(tr.Spec.Filters) > 0 { // filters override filter, as in Knative
		for _, f := range tr.Spec.Filters {
			c.addSpec(f)
		}
		return c
	}
	if tr.Spec.Filter != nil {
		if v := tr.Spec.Filter.Attributes["type"]; v != "" {
			c.exact = append(c.exact, v)
		}
	}
	return c
}

// sample is an event of type typ as its producer would emit it.
func sample(spec eventtype.Spec, producer string) event.Event {
	e := event.New()
	e.SetID("flow-test")
	e.SetType(spec.Type)
	e.SetSource("/overture/" + producer)
	return e
}

func registered() map[string]bool {
	names := map[string]bool{}
	for _, e := range functions.All() {
		names[e.Name] = true
	}
	return names
}

// Every trigger filters on a catalogued type that something produces.
func TestEveryTriggerListensForAProducedType(t *testing.T) {
	set := load(t)
	for _, tr := range set.Triggers {
		c := constraintsOf(tr)
		if c.empty() {
			t.Errorf("%s: trigger %s does not filter on type; it would receive every event", tr.File, tr.Key())
			continue
		}
		for _, typ := range c.exact {
			spec, ok := eventtype.Lookup(typ)
			if !ok {
				t.Errorf("%s: trigger %s filters on type %s, which is not in internal/eventtype", tr.File, tr.Key(), typ)
				continue
			}
			if len(spec.Producers) == 0 {
				t.Errorf("%s: trigger %s waits for %s, which nothing produces", tr.File, tr.Key(), typ)
			}
		}
		for _, p := range c.prefix {
			if !slices.ContainsFunc(eventtype.All(), func(s eventtype.Spec) bool { return strings.HasPrefix(s.Type, p) && len(s.Producers) > 0 }) {
				t.Errorf("%s: trigger %s filters on type prefix %q, which no produced type has", tr.File, tr.Key(), p)
			}
		}
		for _, sfx := range c.suffix {
			if !slices.ContainsFunc(eventtype.All(), func(s eventtype.Spec) bool { return strings.HasSuffix(s.Type, sfx) && len(s.Producers) > 0 }) {
				t.Errorf("%s: trigger %s filters on type suffix %q, which no produced type has", tr.File, tr.Key(), sfx)
			}
		}
	}
}

// Every subscriber and dead-letter sink that refers to a Service is a
// registered function.
func TestEverySubscriberIsAFunction(t *testing.T) {
	set := load(t)
	fns := registered()
	check := func(where, what string, d *manifest.Destination) {
		if d == nil || d.Ref == nil {
			return
		}
		if d.Ref.Kind == "Service" && !fns[d.Ref.Name] {
			t.Errorf("%s: %s refers to %q, which is not a function in functions.All()", where, what, d.Ref.Name)
		}
	}
	for _, tr := range set.Triggers {
		check(tr.File, "trigger "+tr.Key()+" subscriber", &tr.Spec.Subscriber)
		if tr.Spec.Delivery != nil {
			check(tr.File, "trigger "+tr.Key()+" deadLetterSink", tr.Spec.Delivery.DeadLetterSink)
		}
	}
	for _, b := range set.Brokers {
		if b.Spec.Delivery != nil {
			check(b.File, "broker "+b.Metadata.Name+" deadLetterSink", b.Spec.Delivery.DeadLetterSink)
		}
	}
	for _, p := range set.PingSources {
		check(p.File, "pingsource "+p.Metadata.Name+" sink", &p.Spec.Sink)
	}
}

// Every type some producer emits reaches at least one trigger, unless the
// catalog declares it Terminal; and the catalog names the functions that
// really consume it.
func TestEveryProducedTypeIsConsumed(t *testing.T) {
	set := load(t)
	for _, spec := range eventtype.All() {
		var subscribers []string
		for _, producer := range spec.Producers {
			e := sample(spec, producer)
			for _, tr := range set.Triggers {
				if tr.Match(e) && tr.Spec.Subscriber.Ref != nil && !slices.Contains(subscribers, tr.Spec.Subscriber.Ref.Name) {
					subscribers = append(subscribers, tr.Spec.Subscriber.Ref.Name)
				}
			}
		}
		if len(subscribers) == 0 && !spec.Terminal {
			t.Errorf("%s is produced by %s but no trigger delivers it and it is not Terminal; add a trigger or mark it Terminal",
				spec.Type, strings.Join(spec.Producers, ", "))
		}
		for _, s := range subscribers {
			if !slices.Contains(spec.Consumers, s) {
				t.Errorf("%s reaches %s through a trigger, but the catalog's Consumers (%s) do not list it",
					spec.Type, s, strings.Join(spec.Consumers, ", "))
			}
		}
	}
}

// Every func.yaml parses (LoadDir validates it) and names a registered
// function, and every registered function has one.
func TestFuncYAMLsMatchTheRegistry(t *testing.T) {
	set := load(t)
	fns := registered()
	withYAML := map[string]bool{}
	for _, f := range set.Funcs {
		withYAML[f.Name] = true
		if !fns[f.Name] {
			t.Errorf("%s: function %q is not registered in functions/functions.go", f.File, f.Name)
		}
		if f.Runtime != "go" || f.Invoke != "cloudevent" {
			t.Errorf("%s: runtime %q invoke %q, want go and cloudevent", f.File, f.Runtime, f.Invoke)
		}
	}
	for name := range fns {
		if !withYAML[name] {
			t.Errorf("function %s is registered but has no func.yaml under functions/", name)
		}
	}
	// Each function directory holds exactly one func.yaml.
	dirs, err := os.ReadDir("../functions")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		if _, err := os.Stat(filepath.Join("../functions", d.Name(), "func.yaml")); err != nil {
			t.Errorf("functions/%s has no func.yaml", d.Name())
		}
	}
}

// The checks above must catch what they claim to; run them against a broken
// flow built in memory.
func TestFlowChecksCatchMistakes(t *testing.T) {
	broken := `apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: default, namespace: overture}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: everything, namespace: overture}
spec:
  broker: default
  subscriber: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: nobody}}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: unknown-type, namespace: overture}
spec:
  broker: default
  filters:
    - any:
        - exact: {type: music.overture.nothing.happened.v1}
  subscriber: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: noop}}
`
	set := &manifest.Set{}
	if err := set.Add("broken.yaml", []byte(broken)); err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, tr := range set.Triggers {
		c := constraintsOf(tr)
		if c.empty() {
			found = append(found, tr.Metadata.Name+": no type")
		}
		for _, typ := range c.exact {
			if _, ok := eventtype.Lookup(typ); !ok {
				found = append(found, tr.Metadata.Name+": unknown "+typ)
			}
		}
		if !registered()[tr.Spec.Subscriber.Ref.Name] {
			found = append(found, tr.Metadata.Name+": no function "+tr.Spec.Subscriber.Ref.Name)
		}
	}
	want := []string{"everything: no type", "everything: no function nobody", "unknown-type: unknown music.overture.nothing.happened.v1"}
	if fmt.Sprint(found) != fmt.Sprint(want) {
		t.Fatalf("found %v, want %v", found, want)
	}
}

// policyTypes returns the types a policy's filters allow when they are a list
// of exact types (one exact entry, or one any of exact entries), and false for
// any other shape: brokers/ names every type a sender may send, so that no
// future type slips through a prefix.
func policyTypes(p *manifest.EventPolicy) ([]string, bool) {
	if len(p.Spec.Filters) != 1 {
		return nil, false
	}
	f := p.Spec.Filters[0]
	entries := []manifest.FilterSpec{f}
	if f.Any != nil {
		entries = f.Any
	}
	var types []string
	for _, e := range entries {
		typ, ok := e.Exact["type"]
		if !ok || len(e.Exact) != 1 || e.Prefix != nil || e.Suffix != nil || e.All != nil || e.Any != nil || e.Not != nil || e.CESQL != "" {
			return nil, false
		}
		types = append(types, typ)
	}
	return types, true
}

// policyMismatches compares the EventPolicies of Broker overture/default with
// the catalog: every publisher of a type (eventtype.Spec.Publishers: the relay
// for outbox types, else the producers; every PingSource for the ping type)
// must be allowed to send it, and no policy may allow anyone else anything.
func policyMismatches(set *manifest.Set, catalog []eventtype.Spec) []string {
	var found []string
	def, ok := set.Broker("overture", "default")
	if !ok {
		return []string{"no Broker overture/default"}
	}
	policies := set.PoliciesFor(def)
	// Who the catalog says may publish each type.
	want := map[string]map[string]bool{} // type -> subjects
	for _, spec := range catalog {
		want[spec.Type] = map[string]bool{}
		for _, p := range spec.Publishers() {
			if p == eventtype.PingSourceProducer {
				for _, ps := range set.PingSources {
					want[spec.Type][manifest.RefSubject(manifest.KReference{APIVersion: manifest.SourcesV1, Kind: "PingSource", Name: ps.Metadata.Name}, ps.Metadata.Namespace)] = true
				}
				continue
			}
			want[spec.Type][identity.Subject(p)] = true
		}
	}
	// What the policies allow.
	subjects := map[string]bool{}
	for _, p := range policies {
		types, ok := policyTypes(p)
		if !ok {
			found = append(found, fmt.Sprintf("policy %s: filters must be exact types (an exact entry, or any of exact entries)", p.Metadata.Name))
		}
		for _, typ := range types {
			if _, ok := eventtype.Lookup(typ); !ok && want[typ] == nil {
				found = append(found, fmt.Sprintf("policy %s allows type %s, which is not in the catalog", p.Metadata.Name, typ))
			}
		}
		for _, s := range p.Subjects() {
			if strings.HasSuffix(s, "*") {
				found = append(found, fmt.Sprintf("policy %s allows the wildcard subject %s; name each ServiceAccount", p.Metadata.Name, s))
				continue
			}
			subjects[s] = true
		}
	}
	for _, spec := range catalog {
		e := sample(spec, "flow-test")
		for s := range want[spec.Type] {
			if !manifest.Authorize(policies, s, e) {
				found = append(found, fmt.Sprintf("%s cannot publish %s, which the catalog says it publishes", s, spec.Type))
			}
		}
		for _, s := range slices.Sorted(maps.Keys(subjects)) {
			if !want[spec.Type][s] && manifest.Authorize(policies, s, e) {
				found = append(found, fmt.Sprintf("%s may publish %s, but the catalog does not list it as a publisher", s, spec.Type))
			}
		}
	}
	slices.Sort(found)
	return found
}

// The EventPolicies in brokers/ allow exactly the catalog's publishers: each
// type only from those the catalog lists, and each of them can publish it.
func TestPoliciesAllowExactlyTheCatalogsPublishers(t *testing.T) {
	set := load(t)
	if len(set.EventPolicies) == 0 {
		t.Fatal("brokers/ has no EventPolicy: with default-authorization-mode deny-all nothing could be published")
	}
	for _, m := range policyMismatches(set, eventtype.All()) {
		t.Error(m)
	}
}

// policyMismatches catches a policy that lets a non-producer publish (the
// forged user.updated.v1 of issue 10), one that forgets a producer, one with a
// wildcard subject or a prefix filter, and a PingSource no policy names.
func TestPolicyChecksCatchMistakes(t *testing.T) {
	broken := `apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: default, namespace: overture}
---
apiVersion: sources.knative.dev/v1
kind: PingSource
metadata: {name: tick, namespace: overture}
spec: {sink: {ref: {apiVersion: eventing.knative.dev/v1, kind: Broker, name: default}}}
---
apiVersion: eventing.knative.dev/v1alpha1
kind: EventPolicy
metadata: {name: notification, namespace: overture}
spec:
  from: [{sub: "system:serviceaccount:overture:notification"}]
  filters: [{exact: {type: music.overture.user.updated.v1}}]
---
apiVersion: eventing.knative.dev/v1alpha1
kind: EventPolicy
metadata: {name: everyone, namespace: overture}
spec:
  from: [{sub: "system:serviceaccount:overture:any-*"}]
  filters: [{prefix: {type: music.overture.}}]
`
	set := &manifest.Set{}
	if err := set.Add("broken.yaml", []byte(broken)); err != nil {
		t.Fatal(err)
	}
	catalog := []eventtype.Spec{
		{Type: "music.overture.user.updated.v1", Producers: []string{"user"}, Outbox: true},
		{Type: eventtype.Ping, Producers: []string{eventtype.PingSourceProducer}},
	}
	got := strings.Join(policyMismatches(set, catalog), "\n")
	for _, want := range []string{
		"system:serviceaccount:overture:notification may publish music.overture.user.updated.v1, but the catalog does not list it",
		"system:serviceaccount:overture:cdc cannot publish music.overture.user.updated.v1",
		"system:serviceaccount:overture:tick-oidc-sources.knative.dev-pingsource cannot publish dev.knative.sources.ping",
		"policy everyone allows the wildcard subject",
		"policy everyone: filters must be exact types",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the policy check missed %q; it found:\n%s", want, got)
		}
	}
}
