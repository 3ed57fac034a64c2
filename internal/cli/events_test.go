package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/overture-music/overture/functions/deadletter"
	"github.com/overture-music/overture/internal/broker"
	"github.com/overture-music/overture/internal/broker/brokertest"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/function"
	"github.com/overture-music/overture/internal/function/functiontest"
	"github.com/overture-music/overture/internal/identity"
	"github.com/overture-music/overture/internal/identity/identitytest"
	"github.com/overture-music/overture/internal/postgres/postgrestest"
	"github.com/overture-music/overture/internal/testenv"
)

// TestEventsDLQListAndRedrive drives `overture events dlq` against a real
// database and a real broker ingress over HTTP.
func TestEventsDLQListAndRedrive(t *testing.T) {
	ctx := context.Background()
	dbURL := testenv.Postgres(t)
	pool := postgrestest.Open(t, dbURL)
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

	// A broker whose ingress the re-drive posts to: brokertest's broker with
	// one Trigger for the test types, its subscriber a recorder.
	// The broker wants a sender identity: the operator's token file names one
	// its EventPolicy allows.
	rec := &functiontest.Recorder{}
	auth := identitytest.New(t)
	yaml := brokertest.NoopYAML("music.overture.test.") + brokertest.AllowYAML("operator", identity.Subject("operator"), "music.overture.test.")
	b := functiontest.RunBroker(t, broker.Config{Pool: pool, Objects: functiontest.Objects(t, yaml), Verifier: auth.Verifier},
		map[string]function.Handler{"noop": rec})
	srv := httptest.NewServer(b)
	defer srv.Close()
	brokerEnv := env(map[string]string{"OVERTURE_BROKER_URL": srv.URL + "/overture/default", identity.TokenFileKey: auth.TokenFile(t, "operator")})

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
	rec.Wait(t, 2, 10*time.Second)
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
