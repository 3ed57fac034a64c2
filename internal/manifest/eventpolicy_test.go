package manifest

import (
	"strings"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
)

const policyBroker = goodBroker + `---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata:
  name: audit
  namespace: overture
  labels: {tier: audit}
`

func policySet(t *testing.T, yaml string) *Set {
	t.Helper()
	set := &Set{}
	if err := set.Add("test.yaml", []byte(policyBroker+"---\n"+yaml)); err != nil {
		t.Fatal(err)
	}
	if err := set.Validate(); err != nil {
		t.Fatal(err)
	}
	return set
}

func typed(typ string) event.Event {
	e := testEvent()
	e.SetType(typ)
	return e
}

// TestEventPolicyAuthorize is the decision table of a deny-all broker: who
// may send what to which broker.
func TestEventPolicyAuthorize(t *testing.T) {
	t.Parallel()
	set := policySet(t, `
apiVersion: eventing.knative.dev/v1alpha1
kind: EventPolicy
metadata: {name: user, namespace: overture}
spec:
  to: [{ref: {apiVersion: eventing.knative.dev/v1, kind: Broker, name: default}}]
  from: [{sub: "system:serviceaccount:overture:user"}]
  filters:
  - any:
    - exact: {type: music.overture.user.updated.v1}
    - exact: {type: music.overture.saga.step_succeeded.v1}
---
apiVersion: eventing.knative.dev/v1alpha1
kind: EventPolicy
metadata: {name: pings, namespace: overture}
spec:
  from: [{ref: {apiVersion: sources.knative.dev/v1, kind: PingSource, name: renewal-ping}}]
  filters: [{exact: {type: dev.knative.sources.ping}}]
---
apiVersion: eventing.knative.dev/v1alpha1
kind: EventPolicy
metadata: {name: auditors, namespace: overture}
spec:
  to: [{selector: {apiVersion: eventing.knative.dev/v1, kind: Broker, matchLabels: {tier: audit}}}]
  from: [{sub: "system:serviceaccount:overture:audit-*"}]
`)
	def, _ := set.Broker("overture", "default")
	audit, _ := set.Broker("overture", "audit")
	ping := "system:serviceaccount:overture:renewal-ping-oidc-sources.knative.dev-pingsource"
	tests := []struct {
		name    string
		broker  *Broker
		subject string
		typ     string
		want    bool
	}{
		{"OwnerSendsItsType", def, "system:serviceaccount:overture:user", "music.overture.user.updated.v1", true},
		{"OwnerSendsItsOtherType", def, "system:serviceaccount:overture:user", "music.overture.saga.step_succeeded.v1", true},
		{"OwnerSendsATypeItDoesNotOwn", def, "system:serviceaccount:overture:user", "music.overture.payment.completed.v1", false},
		{"OtherSubjectSendsTheOwnersType", def, "system:serviceaccount:overture:notification", "music.overture.user.updated.v1", false},
		{"SameNameOtherNamespace", def, "system:serviceaccount:evil:user", "music.overture.user.updated.v1", false},
		{"SubjectPrefixIsNotTheSubject", def, "system:serviceaccount:overture:user2", "music.overture.user.updated.v1", false},
		{"Anonymous", def, "", "music.overture.user.updated.v1", false},
		{"PingSourceRefResolvesToItsOIDCAccount", def, ping, "dev.knative.sources.ping", true},
		{"PingSourceRefOnlyItsType", def, ping, "music.overture.user.updated.v1", false},
		{"PolicyWithoutToCoversEveryBrokerOfTheNamespace", audit, ping, "dev.knative.sources.ping", true},
		{"RefToOtherBrokerDoesNotApply", audit, "system:serviceaccount:overture:user", "music.overture.user.updated.v1", false},
		{"SelectorWildcardSubject", audit, "system:serviceaccount:overture:audit-writer", "anything.v1", true},
		{"SelectorDoesNotSelectDefault", def, "system:serviceaccount:overture:audit-writer", "anything.v1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := Authorize(set.PoliciesFor(tt.broker), tt.subject, typed(tt.typ)); got != tt.want {
				t.Errorf("Authorize(%s, %q, %s) = %v, want %v", tt.broker.Metadata.Name, tt.subject, tt.typ, got, tt.want)
			}
		})
	}
}

// TestEventPolicyDenyAllWithoutPolicies: a broker no policy applies to
// accepts nobody (default-authorization-mode deny-all).
func TestEventPolicyDenyAllWithoutPolicies(t *testing.T) {
	t.Parallel()
	set := policySet(t, `
apiVersion: eventing.knative.dev/v1alpha1
kind: EventPolicy
metadata: {name: only-audit, namespace: overture}
spec:
  to: [{ref: {apiVersion: eventing.knative.dev/v1, kind: Broker, name: audit}}]
  from: [{sub: "system:serviceaccount:overture:*"}]
`)
	def, _ := set.Broker("overture", "default")
	if ps := set.PoliciesFor(def); len(ps) != 0 {
		t.Fatalf("policies for default: %d, want none", len(ps))
	}
	if Authorize(nil, "system:serviceaccount:overture:user", typed("music.overture.user.updated.v1")) {
		t.Error("no policy allowed an event")
	}
}

// TestEventPolicyRejects: malformed policies are refused at load with a
// message that says what is wrong, as the Knative webhook would.
func TestEventPolicyRejects(t *testing.T) {
	t.Parallel()
	head := "apiVersion: eventing.knative.dev/v1alpha1\nkind: EventPolicy\nmetadata: {name: p, namespace: overture}\n"
	tests := []struct {
		name, doc, want string
	}{
		{"NoFrom", head + "spec: {filters: [{exact: {type: a}}]}\n", "at least one sender"},
		{"EmptyFrom", head + "spec: {from: [{}]}\n", "one of sub and ref is required"},
		{"RefAndSub", head + "spec: {from: [{sub: a, ref: {apiVersion: sources.knative.dev/v1, kind: PingSource, name: p}}]}\n", "mutually exclusive"},
		{"IncompleteRef", head + "spec: {from: [{ref: {kind: PingSource, name: p}}]}\n", "apiVersion, kind and name are required"},
		{"WildcardInTheMiddle", head + "spec: {from: [{sub: 'system:*:overture:x'}]}\n", "only at the end"},
		{"Everybody", head + "spec: {from: [{sub: '*'}]}\n", "allows every sender"},
		{"ToNotABroker", head + "spec: {to: [{ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: user}}], from: [{sub: a}]}\n", "must name a Broker"},
		{"ToNeither", head + "spec: {to: [{}], from: [{sub: a}]}\n", "one of ref and selector"},
		{"EmptySelector", head + "spec: {to: [{selector: {kind: Broker}}], from: [{sub: a}]}\n", "matchLabels is required"},
		{"CESQL", head + "spec: {from: [{sub: a}], filters: [{cesql: \"type = 'a'\"}]}\n", "CESQL"},
		{"BadDialect", head + "spec: {from: [{sub: a}], filters: [{exact: {type: a}, prefix: {type: b}}]}\n", "several dialects"},
		{"UnknownField", head + "spec: {from: [{sub: a}], allow: all}\n", "unknown field"},
		{"WrongVersion", "apiVersion: eventing.knative.dev/v1\nkind: EventPolicy\nmetadata: {name: p}\nspec: {from: [{sub: a}]}\n", "v1alpha1"},
		{"LongRef", head + "spec: {from: [{ref: {apiVersion: sources.knative.dev/v1, kind: PingSource, name: " + strings.Repeat("a", 40) + "}}]}\n", "at most 63 characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := (&Set{}).Add("p.yaml", []byte(tt.doc))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestEventPolicyReferences: a policy naming a broker that does not exist, or
// one of another namespace, fails Validate; duplicates too.
func TestEventPolicyReferences(t *testing.T) {
	t.Parallel()
	for name, doc := range map[string]string{
		"which is not defined": "apiVersion: eventing.knative.dev/v1alpha1\nkind: EventPolicy\nmetadata: {name: p, namespace: overture}\nspec: {to: [{ref: {apiVersion: eventing.knative.dev/v1, kind: Broker, name: nope}}], from: [{sub: a}]}\n",
		"its own namespace":    "apiVersion: eventing.knative.dev/v1alpha1\nkind: EventPolicy\nmetadata: {name: p, namespace: overture}\nspec: {to: [{ref: {apiVersion: eventing.knative.dev/v1, kind: Broker, name: default, namespace: other}}], from: [{sub: a}]}\n",
		"is also defined":      "apiVersion: eventing.knative.dev/v1alpha1\nkind: EventPolicy\nmetadata: {name: p}\nspec: {from: [{sub: a}]}\n---\napiVersion: eventing.knative.dev/v1alpha1\nkind: EventPolicy\nmetadata: {name: p}\nspec: {from: [{sub: b}]}\n",
	} {
		set := &Set{}
		if err := set.Add("p.yaml", []byte(policyBroker+"---\n"+doc)); err != nil {
			t.Fatalf("%s: Add: %v", name, err)
		}
		if err := set.Validate(); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("Validate: %v, want an error containing %q", err, name)
		}
	}
}

// FuzzEventPolicy parses arbitrary policies and evaluates them against
// arbitrary senders and event types: no panic, and the decision obeys the
// rules whatever the input — nobody without a subject, nobody the policy does
// not name, nobody when no policy applies.
func FuzzEventPolicy(f *testing.F) {
	f.Add("spec: {from: [{sub: 'system:serviceaccount:overture:user'}], filters: [{exact: {type: a.v1}}]}", "system:serviceaccount:overture:user", "a.v1", "/src")
	f.Add("spec: {from: [{sub: 'system:serviceaccount:overture:*'}], filters: [{not: {prefix: {type: b}}}, {any: [{suffix: {source: x}}, {exact: {subject: s}}]}]}", "system:serviceaccount:overture:x", "b.v1", "x")
	f.Add("spec: {from: [{ref: {apiVersion: sources.knative.dev/v1, kind: PingSource, name: p}}], to: [{selector: {matchLabels: {a: b}}}]}", "", "dev.knative.sources.ping", "/p")
	f.Fuzz(func(t *testing.T, spec, subject, typ, source string) {
		set := &Set{}
		doc := "apiVersion: eventing.knative.dev/v1alpha1\nkind: EventPolicy\nmetadata: {name: p, namespace: overture}\n" + spec
		if err := set.Add("fuzz.yaml", []byte(doc)); err != nil || len(set.EventPolicies) != 1 {
			return
		}
		p := set.EventPolicies[0]
		e := event.New()
		e.SetID("1")
		e.SetType(typ)
		e.SetSource(source)
		got := Authorize([]*EventPolicy{p}, subject, e)
		if got && subject == "" {
			t.Fatal("allowed a sender without a subject")
		}
		if got && !p.AllowsSubject(subject) {
			t.Fatalf("allowed %q, whom the policy does not name", subject)
		}
		if got != (p.AllowsSubject(subject) && p.Match(e)) {
			t.Fatal("decision differs from subject and filter match")
		}
		if Authorize(nil, subject, e) {
			t.Fatal("allowed without any policy")
		}
	})
}
