package manifest

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"
)

// EventingV1Alpha1 is the API version of EventPolicy.
const EventingV1Alpha1 = "eventing.knative.dev/v1alpha1"

// EventPolicy is an eventing.knative.dev/v1alpha1 EventPolicy: which senders
// (spec.from) may send which events (spec.filters) to which Brokers (spec.to).
// Overture runs Knative with authentication-oidc enabled and
// default-authorization-mode deny-all, so a Broker accepts an event only from
// a sender that some policy applying to it allows; the embedded broker
// enforces the same objects (see [Authorize]).
type EventPolicy struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta `json:"metadata"`
	Spec     struct {
		// To lists the targets; empty means every Broker in the namespace.
		To []EventPolicyTo `json:"to,omitempty"`
		// From lists the senders the policy allows.
		From []EventPolicyFrom `json:"from"`
		// Filters must all match an event (Trigger filter dialects).
		Filters []FilterSpec `json:"filters,omitempty"`
	} `json:"spec"`
	File string `json:"-"`

	filter Filter
}

// EventPolicyTo is one target: a ref to a Broker, or a label selector.
type EventPolicyTo struct {
	Ref      *KReference          `json:"ref,omitempty"`
	Selector *EventPolicySelector `json:"selector,omitempty"`
}

// EventPolicySelector selects targets by kind and labels.
type EventPolicySelector struct {
	APIVersion  string            `json:"apiVersion,omitempty"`
	Kind        string            `json:"kind,omitempty"`
	MatchLabels map[string]string `json:"matchLabels"`
}

// EventPolicyFrom is one sender: a subject (a ServiceAccount, "sub", which
// may end in the wildcard "*") or a ref to a source, whose OIDC identity is
// the ServiceAccount Knative creates for it (see [RefSubject]).
type EventPolicyFrom struct {
	Ref *KReference `json:"ref,omitempty"`
	Sub string      `json:"sub,omitempty"`
}

// saName is a ServiceAccount name Knative derives for a source (a DNS
// subdomain, which Knative keeps within 63 characters).
var saName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`)

// Key is "namespace/name".
func (p *EventPolicy) Key() string { return p.Metadata.Namespace + "/" + p.Metadata.Name }

// RefSubject is the subject of the OIDC identity Knative gives the object ref
// points at, when the policy lives in namespace: the ServiceAccount
// "<name>-oidc-<group>-<kind>" (lower case) of the object's namespace.
func RefSubject(ref KReference, namespace string) string {
	ns := ref.Namespace
	if ns == "" {
		ns = namespace
	}
	group, _, ok := strings.Cut(ref.APIVersion, "/")
	if !ok {
		group = "" // core group ("v1")
	}
	return "system:serviceaccount:" + ns + ":" + strings.ToLower(ref.Name+"-oidc-"+group+"-"+ref.Kind)
}

// Subjects returns the subjects the policy allows, refs resolved; a trailing
// "*" is a wildcard.
func (p *EventPolicy) Subjects() []string {
	out := make([]string, 0, len(p.Spec.From))
	for _, f := range p.Spec.From {
		if f.Ref != nil {
			out = append(out, RefSubject(*f.Ref, p.Metadata.Namespace))
		} else {
			out = append(out, f.Sub)
		}
	}
	return out
}

// AllowsSubject reports whether some spec.from entry names subject.
func (p *EventPolicy) AllowsSubject(subject string) bool {
	if subject == "" {
		return false
	}
	for _, s := range p.Subjects() {
		if prefix, ok := strings.CutSuffix(s, "*"); ok {
			if strings.HasPrefix(subject, prefix) {
				return true
			}
		} else if s == subject {
			return true
		}
	}
	return false
}

// Match reports whether e passes spec.filters (every event when there are none).
func (p *EventPolicy) Match(e event.Event) bool {
	if p.filter == nil {
		if err := p.compile(); err != nil {
			return false
		}
	}
	return p.filter.Match(e)
}

func (p *EventPolicy) compile() error {
	if len(p.Spec.Filters) == 0 {
		p.filter = MatchAll
		return nil
	}
	f, err := CompileFilters(p.Spec.Filters)
	if err != nil {
		return err
	}
	p.filter = f
	return nil
}

// AppliesTo reports whether the policy covers Broker b: same namespace, and
// spec.to empty or naming b by ref or selector.
func (p *EventPolicy) AppliesTo(b *Broker) bool {
	if p.Metadata.Namespace != b.Metadata.Namespace {
		return false
	}
	if len(p.Spec.To) == 0 {
		return true
	}
	for _, t := range p.Spec.To {
		switch {
		case t.Ref != nil:
			ns := t.Ref.Namespace
			if ns == "" {
				ns = p.Metadata.Namespace
			}
			if t.Ref.Kind == "Broker" && t.Ref.Name == b.Metadata.Name && ns == b.Metadata.Namespace {
				return true
			}
		case t.Selector != nil:
			s := t.Selector
			if s.Kind != "" && s.Kind != "Broker" || s.APIVersion != "" && s.APIVersion != EventingV1 {
				continue
			}
			ok := true
			for k, v := range s.MatchLabels {
				if got, has := b.Metadata.Labels[k]; !has || got != v {
					ok = false
					break
				}
			}
			if ok {
				return true
			}
		}
	}
	return false
}

// PoliciesFor returns the policies that apply to Broker b.
func (s *Set) PoliciesFor(b *Broker) []*EventPolicy {
	var out []*EventPolicy
	for _, p := range s.EventPolicies {
		if p.AppliesTo(b) {
			out = append(out, p)
		}
	}
	return out
}

// Authorize is the decision of a Broker with default-authorization-mode
// deny-all, given the policies that apply to it: subject may send e when some
// policy allows subject and all of its filters match e. No policy, no event.
func Authorize(policies []*EventPolicy, subject string, e event.Event) bool {
	for _, p := range policies {
		if p.AllowsSubject(subject) && p.Match(e) {
			return true
		}
	}
	return false
}

func (p *EventPolicy) validate() error {
	var errs []error
	if len(p.Spec.From) == 0 {
		errs = append(errs, errors.New("spec.from: at least one sender (sub or ref) is required; a policy without senders allows nobody"))
	}
	for i, f := range p.Spec.From {
		path := fmt.Sprintf("spec.from[%d]", i)
		switch {
		case f.Ref != nil && f.Sub != "":
			errs = append(errs, fmt.Errorf("%s: ref and sub are mutually exclusive", path))
		case f.Ref != nil:
			if f.Ref.APIVersion == "" || f.Ref.Kind == "" || f.Ref.Name == "" {
				errs = append(errs, fmt.Errorf("%s.ref: apiVersion, kind and name are required", path))
				continue
			}
			_, name, _ := strings.Cut(strings.TrimPrefix(RefSubject(*f.Ref, p.Metadata.Namespace), "system:serviceaccount:"), ":")
			if len(name) > 63 || !saName.MatchString(name) {
				errs = append(errs, fmt.Errorf("%s.ref: the OIDC ServiceAccount name %q of %s %s is not a name of at most 63 characters (Knative shortens longer ones with a hash); name the subject with sub instead", path, name, f.Ref.Kind, f.Ref.Name))
			}
		case f.Sub == "":
			errs = append(errs, fmt.Errorf("%s: one of sub and ref is required", path))
		default:
			if i := strings.Index(f.Sub, "*"); i >= 0 && i != len(f.Sub)-1 {
				errs = append(errs, fmt.Errorf("%s.sub %q: the wildcard * is allowed only at the end", path, f.Sub))
			}
			if f.Sub == "*" {
				errs = append(errs, fmt.Errorf("%s.sub: \"*\" allows every sender; name the ServiceAccounts (system:serviceaccount:<namespace>:<name>)", path))
			}
			if strings.ContainsFunc(f.Sub, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
				errs = append(errs, fmt.Errorf("%s.sub %q: contains spaces or control characters", path, f.Sub))
			}
		}
	}
	for i, t := range p.Spec.To {
		path := fmt.Sprintf("spec.to[%d]", i)
		switch {
		case t.Ref != nil && t.Selector != nil:
			errs = append(errs, fmt.Errorf("%s: ref and selector are mutually exclusive", path))
		case t.Ref != nil:
			if t.Ref.Kind != "Broker" || t.Ref.APIVersion != EventingV1 || t.Ref.Name == "" {
				errs = append(errs, fmt.Errorf("%s.ref: must name a Broker (apiVersion %s, kind Broker, name), got %s %s %q", path, EventingV1, t.Ref.APIVersion, t.Ref.Kind, t.Ref.Name))
			}
		case t.Selector != nil:
			if len(t.Selector.MatchLabels) == 0 {
				errs = append(errs, fmt.Errorf("%s.selector: matchLabels is required", path))
			}
		default:
			errs = append(errs, fmt.Errorf("%s: one of ref and selector is required", path))
		}
	}
	if err := p.compile(); err != nil {
		errs = append(errs, fmt.Errorf("spec.filters: %w", err))
	}
	return errors.Join(errs...)
}

// validateRefs checks that every spec.to ref names a Broker of the set.
func (p *EventPolicy) validateRefs(s *Set) error {
	var errs []error
	for i, t := range p.Spec.To {
		if t.Ref == nil {
			continue
		}
		ns := t.Ref.Namespace
		if ns == "" {
			ns = p.Metadata.Namespace
		}
		if ns != p.Metadata.Namespace {
			errs = append(errs, fmt.Errorf("%s: spec.to[%d]: an EventPolicy applies only to its own namespace %s, not %s", p.File, i, p.Metadata.Namespace, ns))
			continue
		}
		if _, ok := s.Broker(ns, t.Ref.Name); !ok {
			errs = append(errs, fmt.Errorf("%s: spec.to[%d] refers to Broker %s/%s, which is not defined", p.File, i, ns, t.Ref.Name))
		}
	}
	return errors.Join(errs...)
}
