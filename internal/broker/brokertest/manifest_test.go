package brokertest

import (
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/overture-music/overture/internal/manifest"
)

// The benchmarks' manifest is valid as deployed and routes exactly the
// types under its prefix to noop.
func TestNoopYAMLRoutesItsPrefixToNoop(t *testing.T) {
	t.Parallel()
	set := &manifest.Set{}
	if err := set.Add("noop.yaml", []byte(NoopYAML("music.overture.bench."))); err != nil {
		t.Fatal(err)
	}
	if err := set.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, ok := set.Broker("overture", "default"); !ok || len(set.Triggers) != 1 {
		t.Fatalf("want the default broker and one trigger, got %d brokers, %d triggers", len(set.Brokers), len(set.Triggers))
	}
	tr := set.Triggers[0]
	if tr.Spec.Subscriber.Ref.Name != "noop" {
		t.Fatalf("subscriber %+v, want the noop function", tr.Spec.Subscriber)
	}
	for typ, want := range map[string]bool{
		"music.overture.bench.tick.v1":        true,
		"music.overture.cdc.track.changed.v1": false,
		"music.overture.benchmark.other.v1":   false,
		"xmusic.overture.bench.tick.v1":       false,
	} {
		e := event.New()
		e.SetID("1")
		e.SetSource("/test")
		e.SetType(typ)
		if got := tr.Match(e); got != want {
			t.Errorf("type %s: matched %v, want %v", typ, got, want)
		}
	}
}
