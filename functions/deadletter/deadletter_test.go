package deadletter_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/overture-music/overture/functions/deadletter"
	"github.com/overture-music/overture/internal/broker"
	"github.com/overture-music/overture/internal/function"
	"github.com/overture-music/overture/internal/function/functiontest"
	"github.com/overture-music/overture/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const yaml = `
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: default, namespace: overture}
spec:
  delivery:
    retry: 1
    backoffDelay: PT0.05S
    deadLetterSink: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: dead-letter}}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: fragile, namespace: overture}
spec:
  broker: default
  filters: [{prefix: {type: music.overture.}}]
  subscriber: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: fragile}}
`

// TestDeadLetterListAndRedrive runs the real broker with the real dead-letter
// function as its sink: a failing subscriber's events land in dead_letter with
// their error, and once the subscriber is fixed a re-drive delivers them.
func TestDeadLetterListAndRedrive(t *testing.T) {
	ctx := context.Background()
	dl := deadletter.New()
	pool := functiontest.Start(t, dl, nil)
	if ok, err := dl.Ready(ctx); !ok || err != nil {
		t.Fatalf("Ready = %v, %v", ok, err)
	}

	fragile := &functiontest.Recorder{}
	fragile.Fail(errors.New("search index is read-only"))
	b := functiontest.RunBroker(t, broker.Config{Pool: pool, Objects: functiontest.Objects(t, yaml), Poll: 50 * time.Millisecond},
		map[string]function.Handler{"fragile": fragile, deadletter.Name: dl})

	var evs []event.Event
	for _, id := range []string{"e1", "e2", "e3"} {
		e := event.New()
		e.SetID(id)
		e.SetType("music.overture.test.thing.v1")
		e.SetSource("/overture/test")
		_ = e.SetData("application/json", map[string]string{"id": id})
		evs = append(evs, e)
	}
	if err := b.Publish(ctx, evs...); err != nil {
		t.Fatal(err)
	}
	var entries []deadletter.Entry
	var err error
	testenv.Poll(5*time.Minute, func() bool {
		if entries, err = deadletter.List(ctx, pool, 10); err != nil {
			t.Fatal(err)
		}
		return len(entries) >= 3
	})
	if len(entries) != 3 {
		t.Fatalf("%d dead letters, want 3", len(entries))
	}
	en := entries[0]
	if en.ErrorDest != "http://fragile.overture.svc.cluster.local" || en.ErrorCode != "500" || !strings.Contains(en.ErrorData, "search index is read-only") {
		t.Errorf("entry error fields: dest %q code %q data %q", en.ErrorDest, en.ErrorCode, en.ErrorData)
	}
	if en.Event.Type() != "music.overture.test.thing.v1" || string(en.Event.Data()) != `{"id":"`+en.Event.ID()+`"}` {
		t.Errorf("entry event: %s", en.Event)
	}

	// A duplicate delivery of a dead letter (at-least-once) changes nothing.
	dup := en.Event.Clone()
	if _, err := dl.Handle(ctx, dup); err != nil {
		t.Fatal(err)
	}
	if again, _ := deadletter.List(ctx, pool, 10); len(again) != 3 || again[0].Times != 1 {
		t.Errorf("duplicate dead letter changed the list: %d entries, times %d", len(again), again[0].Times)
	}

	// Fix the subscriber and re-drive two of them; unknown ids are skipped.
	fragile.Fail(nil)
	n, err := deadletter.Redrive(ctx, pool, b, []int64{entries[0].ID, entries[1].ID, 999999})
	if err != nil || n != 2 {
		t.Fatalf("Redrive = %d, %v; want 2", n, err)
	}
	for _, e := range fragile.Wait(t, 2, 10*time.Second) {
		for _, k := range []string{deadletter.ExtErrorDest, deadletter.ExtErrorCode, deadletter.ExtErrorData} {
			if _, ok := e.Extensions()[k]; ok {
				t.Errorf("re-driven event %s still carries %s", e.ID(), k)
			}
		}
	}
	left, err := deadletter.List(ctx, pool, 10)
	if err != nil || len(left) != 1 || left[0].ID != entries[2].ID {
		t.Fatalf("after re-drive: %v, %v; want only entry %d pending", left, err, entries[2].ID)
	}
	// Re-driving the same ids again does nothing; nil re-drives the rest.
	if n, err := deadletter.Redrive(ctx, pool, b, []int64{entries[0].ID}); err != nil || n != 0 {
		t.Errorf("second re-drive = %d, %v; want 0", n, err)
	}
	if n, err := deadletter.Redrive(ctx, pool, b, nil); err != nil || n != 1 {
		t.Errorf("re-drive all = %d, %v; want 1", n, err)
	}
}
