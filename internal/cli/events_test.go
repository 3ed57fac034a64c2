package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/functions/deadletter"
	"github.com/overture-music/overture/internal/broker"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/function"
	"github.com/overture-music/overture/internal/manifest"
	"github.com/overture-music/overture/internal/testenv"
)

type eventsHandler func(ctx context.Context, e event.Event) (*event.Event, error)

func (f eventsHandler) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	return f(ctx, e)
}

// TestEventsDLQListAndRedrive drives `overture events dlq` against a real
// database and a real broker ingress over HTTP.
func TestEventsDLQListAndRedrive(t *testing.T) {
	ctx := context.Background()
	dbURL := testenv.Postgres(t)
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if err := deadletter.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"ev-1", "ev-2"} {
		e := event.New()
		e.SetID(id)
		e.SetType("music.overture.test.failed.v1")
		e.SetSource("/overture/test")
		e.SetExtension("knativeerrordest", "http://indexer.overture.svc.cluster.local")
		e.SetExtension("knativeerrorcode", "503")
		e.SetExtension("knativeerrordata", base64.StdEncoding.EncodeToString([]byte("opensearch\nunavailable")))
		if err := deadletter.Store(ctx, pool, e); err != nil {
			t.Fatal(err)
		}
	}
	env := func(extra map[string]string) func(string) string {
		return func(k string) string {
			if k == "DATABASE_URL" {
				return dbURL
			}
			return extra[k]
		}
	}
	var out, errOut bytes.Buffer
	if err := events(ctx, []string{"dlq", "list", "--limit", "10"}, &out, &errOut, env(nil)); err != nil {
		t.Fatalf("list: %v (%s)", err, errOut.String())
	}
	for _, want := range []string{"ev-1", "ev-2", "music.overture.test.failed.v1", "http://indexer.overture.svc.cluster.local", "503", "opensearch unavailable"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("list output lacks %q:\n%s", want, out.String())
		}
	}

	// A broker whose ingress the re-drive posts to.
	var mu sync.Mutex
	var got []event.Event
	rec := eventsHandler(func(_ context.Context, e event.Event) (*event.Event, error) {
		mu.Lock()
		got = append(got, e)
		mu.Unlock()
		return nil, nil
	})
	set := &manifest.Set{}
	if err := set.Add("t.yaml", []byte(`
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: default, namespace: overture}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: rec, namespace: overture}
spec:
  broker: default
  subscriber: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: rec}}
`)); err != nil {
		t.Fatal(err)
	}
	b, err := broker.New(ctx, broker.Config{Pool: pool, Objects: set,
		Resolve: func(string) (function.Handler, bool) { return rec, true }})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- b.Run(runCtx) }()
	defer func() { stop(); <-done }()
	srv := httptest.NewServer(b)
	defer srv.Close()
	brokerEnv := env(map[string]string{"OVERTURE_BROKER_URL": srv.URL + "/overture/default"})

	entries, _ := deadletter.List(ctx, pool, 10)
	out.Reset()
	if err := events(ctx, []string{"dlq", "redrive", itoa(entries[0].ID), "424242"}, &out, &errOut, brokerEnv); err != nil {
		t.Fatalf("redrive: %v (%s)", err, errOut.String())
	}
	if !strings.Contains(out.String(), "re-drove 1 of 2") {
		t.Errorf("redrive output %q", out.String())
	}
	out.Reset()
	if err := events(ctx, []string{"dlq", "redrive", "--all"}, &out, &errOut, brokerEnv); err != nil || !strings.Contains(out.String(), "re-drove 1") {
		t.Fatalf("redrive --all: %v, %q", err, out.String())
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d re-driven events delivered, want 2", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	out.Reset()
	if err := events(ctx, []string{"dlq", "list"}, &out, &errOut, env(nil)); err != nil || !strings.Contains(out.String(), "no dead letters") {
		t.Errorf("list after re-drive: %v, %q", err, out.String())
	}

	// Usage errors change nothing and say why.
	for _, args := range [][]string{{}, {"dlq"}, {"dlq", "redrive"}, {"dlq", "redrive", "--all", "3"}, {"dlq", "redrive", "x"}, {"dlq", "list", "--limit", "0"}, {"nope"}} {
		errOut.Reset()
		if err := events(ctx, args, &out, &errOut, env(nil)); err != errUsage {
			t.Errorf("events %v = %v, want a usage error", args, err)
		}
		if errOut.Len() == 0 {
			t.Errorf("events %v printed no explanation", args)
		}
	}
}

func TestEventsDocPrintsTheCatalog(t *testing.T) {
	var out bytes.Buffer
	if err := events(context.Background(), []string{"doc"}, &out, &out, func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
	if out.String() != eventtype.Markdown() {
		t.Error("events doc does not print eventtype.Markdown()")
	}
}

func itoa(i int64) string { return strconv.FormatInt(i, 10) }
