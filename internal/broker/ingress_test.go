package broker

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/overture-music/overture/internal/function"
	"github.com/overture-music/overture/internal/problem"
)

// post sends body to url with the identity of testProducer, unless headers
// set Authorization themselves ("" sends none).
func (tb *testBroker) post(t *testing.T, url, contentType string, body string, headers map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if _, ok := headers["Authorization"]; !ok {
		req.Header.Set("Authorization", "Bearer "+tb.auth.Token(t, testProducer))
	}
	for k, v := range headers {
		if v != "" {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestHTTPIngressModes(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	tb := start(t, brokerYAML+trigger("all", "all", "  filters: [{prefix: {type: music.overture.}}]"), map[string]function.Handler{"all": rec})
	srv := httptest.NewServer(tb)
	defer srv.Close()
	url := srv.URL + "/overture/default"

	// Binary mode.
	resp := tb.post(t, url, "application/json", `{"n":1}`, map[string]string{
		"Ce-Specversion": "1.0", "Ce-Id": "bin-1", "Ce-Type": "music.overture.http.v1", "Ce-Source": "/test", "Ce-Partitionkey": "k",
	})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("binary: status %d", resp.StatusCode)
	}
	// Structured mode, to the default broker path.
	resp = tb.post(t, srv.URL+"/", "application/cloudevents+json",
		`{"specversion":"1.0","id":"str-1","type":"music.overture.http.v1","source":"/test","datacontenttype":"application/json","data":{"n":2}}`, nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("structured: status %d", resp.StatusCode)
	}
	// Batch mode.
	resp = tb.post(t, url, "application/cloudevents-batch+json", `[
		{"specversion":"1.0","id":"batch-1","type":"music.overture.http.v1","source":"/test"},
		{"specversion":"1.0","id":"batch-2","type":"music.overture.http.v1","source":"/test","data":{"n":3}}]`, nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("batch: status %d", resp.StatusCode)
	}
	eventually(t, 10*time.Second, "four events delivered", func() bool { return rec.count() == 4 })
	ids := rec.ids()
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"batch-1", "batch-2", "bin-1", "str-1"}) {
		t.Fatalf("delivered %v", ids)
	}
	evs, _ := rec.got()
	for _, e := range evs {
		if e.ID() == "bin-1" && (string(e.Data()) != `{"n":1}` || e.Extensions()["partitionkey"] != "k") {
			t.Errorf("binary event lost data or extensions: %s", e)
		}
	}

	// The same publisher functions use (function.NewHTTPPublisher) works.
	pub := tb.auth.Publisher(url, testProducer)
	if err := pub.Publish(context.Background(), newEvent("pub-1", "music.overture.http.v1"), newEvent("pub-2", "music.overture.http.v1")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "publisher batch delivered", func() bool { return rec.count() == 6 })
}

func TestHTTPIngressRejectsBadEventsAndStoresNothing(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	tb := start(t, brokerYAML+trigger("all", "all", ""), map[string]function.Handler{"all": rec})
	srv := httptest.NewServer(tb)
	defer srv.Close()
	url := srv.URL + "/overture/default"
	cases := []struct {
		name, ct, body string
		headers        map[string]string
		status         int
		detail         string
	}{
		{"binary without id", "application/json", `{}`, map[string]string{"Ce-Specversion": "1.0", "Ce-Type": "a.v1", "Ce-Source": "/s"}, 400, "id"},
		{"binary bad specversion", "application/json", `{}`, map[string]string{"Ce-Specversion": "9.9", "Ce-Id": "1", "Ce-Type": "a.v1", "Ce-Source": "/s"}, 400, "malformed CloudEvent"},
		{"not a CloudEvent", "text/plain", "hello", nil, 400, "malformed CloudEvent"},
		{"structured bad JSON", "application/cloudevents+json", `{"specversion":"1.0",`, nil, 400, "malformed CloudEvent"},
		{"structured without type", "application/cloudevents+json", `{"specversion":"1.0","id":"x","source":"/s"}`, nil, 400, "type"},
		{"batch not an array", "application/cloudevents-batch+json", `{"id":"x"}`, nil, 400, "malformed CloudEvents batch"},
		{"empty batch", "application/cloudevents-batch+json", `[]`, nil, 400, "empty"},
		{"batch with one invalid", "application/cloudevents-batch+json",
			`[{"specversion":"1.0","id":"ok-1","type":"a.v1","source":"/s"},{"specversion":"1.0","id":"","type":"a.v1","source":"/s"}]`, nil, 400, "invalid CloudEvent 1 in batch"},
	}
	for _, c := range cases {
		resp := tb.post(t, url, c.ct, c.body, c.headers)
		if resp.StatusCode != c.status {
			t.Errorf("%s: status %d, want %d", c.name, resp.StatusCode, c.status)
			continue
		}
		if ct := resp.Header.Get("Content-Type"); ct != problem.ContentType {
			t.Errorf("%s: content type %q", c.name, ct)
		}
		var p problem.Problem
		b, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(b, &p); err != nil || p.Status != c.status || !strings.Contains(p.Detail, c.detail) {
			t.Errorf("%s: problem %s does not explain %q", c.name, b, c.detail)
		}
	}
	if resp := tb.post(t, srv.URL+"/overture/nope", "application/cloudevents+json", `{}`, nil); resp.StatusCode != 404 {
		t.Errorf("unknown broker: status %d", resp.StatusCode)
	}
	if resp, err := http.Get(url); err != nil || resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" {
		t.Errorf("GET: %v %v", resp, err)
	}
	// A good event after the bad ones: once it is delivered and nothing is
	// pending, anything the bad ones had stored would have been delivered
	// too (the trigger takes every event).
	if err := tb.Publish(context.Background(), newEvent("marker", "music.overture.x.v1")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Minute, "the marker to be delivered", func() bool { return rec.count() > 0 && tb.pending(t) == 0 })
	if n := tb.pending(t); n != 0 || rec.count() != 1 {
		t.Fatalf("bad input changed something: %d rows stored, %d delivered (the marker included)", n, rec.count())
	}
	if got := counter(tb.m.rejected, "overture/default"); got != float64(len(cases)) {
		t.Errorf("rejected = %v, want %d", got, len(cases))
	}
}

func TestUnmatchedEventIsAcknowledgedAndCounted(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	tb := start(t, brokerYAML+trigger("only-a", "a", "  filters: [{exact: {type: music.overture.a.v1}}]"), map[string]function.Handler{"a": rec})
	srv := httptest.NewServer(tb)
	defer srv.Close()
	resp := tb.post(t, srv.URL+"/overture/default", "application/cloudevents+json",
		`{"specversion":"1.0","id":"u1","type":"music.overture.nobody.v1","source":"/s"}`, nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if got := counter(tb.m.unmatched, "overture/default"); got != 1 {
		t.Errorf("unmatched = %v, want 1", got)
	}
	if n := tb.pending(t); n != 0 {
		t.Errorf("%d rows stored for an unmatched event", n)
	}
}

// TestURISubscriber covers subscribers reached over HTTP: the event is POSTed
// in binary mode, a 200 with an event is a reply, a 5xx is a failure whose
// body ends up in knativeerrordata.
func TestURISubscriber(t *testing.T) {
	t.Parallel()
	var calls = make(chan string, 10)
	ext := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e, err := cehttp.NewEventFromHTTPRequest(r)
		if err != nil || r.Header.Get("Ce-Id") == "" {
			http.Error(w, "expected a binary-mode CloudEvent", 400)
			return
		}
		calls <- e.ID()
		switch e.Type() {
		case "music.overture.ask.v1":
			reply := newEvent("answer-"+e.ID(), "music.overture.answer.v1")
			_ = cehttp.WriteResponseWriter(r.Context(), binding.ToMessage(&reply), http.StatusOK, w)
		case "music.overture.quiet.v1":
			w.WriteHeader(http.StatusNoContent)
		default:
			http.Error(w, "storage is full", http.StatusInsufficientStorage)
		}
	}))
	defer ext.Close()
	answers := &recorder{}
	dls := &recorder{}
	yaml := brokerYAML + fmt.Sprintf(`
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: external, namespace: overture}
spec:
  broker: default
  filters: [{not: {exact: {type: music.overture.answer.v1}}}]
  subscriber: {uri: %q}
  delivery:
    retry: 1
    backoffDelay: PT0.05S
    deadLetterSink: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: dls}}
`, ext.URL+"/hook") + trigger("answers", "answers", "  filters: [{exact: {type: music.overture.answer.v1}}]")
	tb := start(t, yaml, map[string]function.Handler{"answers": answers, "dls": dls})
	if err := tb.Publish(context.Background(), newEvent("q1", "music.overture.ask.v1"), newEvent("q2", "music.overture.quiet.v1"), newEvent("q3", "music.overture.fail.v1")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "reply and dead letter", func() bool { return answers.count() == 1 && dls.count() == 1 })
	if a := answers.ids(); a[0] != "answer-q1" {
		t.Errorf("reply %v", a)
	}
	dl, _ := dls.got()
	e := dl[0].Extensions()
	data, _ := base64.StdEncoding.DecodeString(fmt.Sprint(e[ExtErrorData]))
	if dl[0].ID() != "q3" || e[ExtErrorCode] != "507" || e[ExtErrorDest] != ext.URL+"/hook" || !bytes.Contains(data, []byte("storage is full")) {
		t.Errorf("dead letter %s: extensions %v (data %q)", dl[0].ID(), e, data)
	}
	eventually(t, 5*time.Second, "all rows settled", func() bool { return tb.pending(t) == 0 })
	close(calls)
	n := 0
	for range calls {
		n++
	}
	if n != 4 { // q1, q2, q3 twice
		t.Errorf("external subscriber called %d times, want 4", n)
	}
}
