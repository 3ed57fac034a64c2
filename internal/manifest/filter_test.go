package manifest

import (
	"errors"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
)

func testEvent() event.Event {
	e := event.New()
	e.SetID("e-1")
	e.SetType("music.overture.subscription.payment.completed.v1")
	e.SetSource("/overture/payments")
	e.SetSubject("user-42")
	e.SetTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	e.SetExtension("partitionkey", "user-42")
	e.SetExtension("attempt", 3)
	return e
}

func TestFilterDialects(t *testing.T) {
	t.Parallel()
	e := testEvent()
	cases := []struct {
		name    string
		filters []FilterSpec
		want    bool
	}{
		{"exact type", []FilterSpec{{Exact: map[string]string{"type": e.Type()}}}, true},
		{"exact type mismatch", []FilterSpec{{Exact: map[string]string{"type": "x.v1"}}}, false},
		{"exact extension", []FilterSpec{{Exact: map[string]string{"partitionkey": "user-42"}}}, true},
		{"exact integer extension", []FilterSpec{{Exact: map[string]string{"attempt": "3"}}}, true},
		{"exact missing attribute", []FilterSpec{{Exact: map[string]string{"dataschema": "x"}}}, false},
		{"exact time", []FilterSpec{{Exact: map[string]string{"time": "2026-01-02T03:04:05Z"}}}, true},
		{"prefix", []FilterSpec{{Prefix: map[string]string{"type": "music.overture.subscription."}}}, true},
		{"prefix mismatch", []FilterSpec{{Prefix: map[string]string{"type": "music.overture.catalog."}}}, false},
		{"suffix", []FilterSpec{{Suffix: map[string]string{"type": ".completed.v1"}}}, true},
		{"suffix mismatch", []FilterSpec{{Suffix: map[string]string{"source": "/auth"}}}, false},
		{"all true", []FilterSpec{{All: []FilterSpec{
			{Prefix: map[string]string{"type": "music."}}, {Exact: map[string]string{"subject": "user-42"}}}}}, true},
		{"all one false", []FilterSpec{{All: []FilterSpec{
			{Prefix: map[string]string{"type": "music."}}, {Exact: map[string]string{"subject": "user-7"}}}}}, false},
		{"any one true", []FilterSpec{{Any: []FilterSpec{
			{Exact: map[string]string{"type": "a.v1"}}, {Suffix: map[string]string{"source": "/payments"}}}}}, true},
		{"any none", []FilterSpec{{Any: []FilterSpec{
			{Exact: map[string]string{"type": "a.v1"}}, {Exact: map[string]string{"type": "b.v1"}}}}}, false},
		{"not", []FilterSpec{{Not: &FilterSpec{Exact: map[string]string{"type": "a.v1"}}}}, true},
		{"not negates", []FilterSpec{{Not: &FilterSpec{Prefix: map[string]string{"type": "music."}}}}, false},
		{"list is a conjunction", []FilterSpec{
			{Prefix: map[string]string{"type": "music."}}, {Exact: map[string]string{"source": "/elsewhere"}}}, false},
		{"nested", []FilterSpec{{Not: &FilterSpec{Any: []FilterSpec{
			{Exact: map[string]string{"subject": "user-1"}}, {Exact: map[string]string{"subject": "user-2"}}}}}}, true},
		{"empty list matches all", nil, true},
	}
	for _, c := range cases {
		f, err := CompileFilters(c.filters)
		if err != nil {
			t.Fatalf("%s: compile: %v", c.name, err)
		}
		if got := f.Match(e); got != c.want {
			t.Errorf("%s: Match = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestFilterRejects(t *testing.T) {
	t.Parallel()
	bad := map[string][]FilterSpec{
		"no dialect":         {{}},
		"two dialects":       {{Exact: map[string]string{"type": "a"}, Prefix: map[string]string{"type": "b"}}},
		"two attributes":     {{Exact: map[string]string{"type": "a", "source": "b"}}},
		"empty value":        {{Prefix: map[string]string{"type": ""}}},
		"bad attribute name": {{Exact: map[string]string{"Type": "a"}}},
		"cesql":              {{CESQL: "type = 'a'"}},
		"empty all":          {{All: []FilterSpec{}}},
		"bad nested in any":  {{Any: []FilterSpec{{Exact: map[string]string{}}}}},
		"bad nested in not":  {{Not: &FilterSpec{}}},
	}
	for name, specs := range bad {
		if _, err := CompileFilters(specs); !errors.Is(err, ErrFilter) {
			t.Errorf("%s: err = %v, want ErrFilter", name, err)
		}
	}
}

func TestLegacyAttributesAndOverride(t *testing.T) {
	t.Parallel()
	e := testEvent()
	cases := []struct {
		name  string
		attrs map[string]string
		want  bool
	}{
		{"type and source", map[string]string{"type": e.Type(), "source": e.Source()}, true},
		{"one differs", map[string]string{"type": e.Type(), "source": "/x"}, false},
		{"extension", map[string]string{"partitionkey": "user-42"}, true},
		{"empty is wildcard", map[string]string{"type": "", "dataschema": ""}, true},
		{"missing attribute", map[string]string{"dataschema": "http://x"}, false},
		{"none", nil, true},
	}
	for _, c := range cases {
		if got := CompileAttributes(c.attrs).Match(e); got != c.want {
			t.Errorf("%s: Match = %v, want %v", c.name, got, c.want)
		}
	}

	// A Trigger with both: filters decides, filter is ignored.
	set := &Set{}
	doc := `
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: default}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: both}
spec:
  broker: default
  filter:
    attributes: {type: does.not.match.v1}
  filters:
    - prefix: {type: music.overture.}
  subscriber: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: fn}}
`
	if err := set.Add("inline.yaml", []byte(doc)); err != nil {
		t.Fatal(err)
	}
	if err := set.Validate(); err != nil {
		t.Fatal(err)
	}
	if !set.Triggers[0].Match(e) {
		t.Error("filters must override filter: event matching filters was rejected")
	}
	other := testEvent()
	other.SetType("does.not.match.v1")
	if set.Triggers[0].Match(other) {
		t.Error("filters must override filter: event matching only filter was accepted")
	}
}
