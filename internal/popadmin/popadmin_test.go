package popadmin_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/popadmin"
)

// A CDN function that starts with a bad POP list fails its start naming
// itself; a good one gets the POPs and the secret, and keeps a logger it was
// given.
func TestJoin(t *testing.T) {
	t.Parallel()
	var d popadmin.Driver
	err := d.Join(map[string]string{"CDN_POPS": "a=eu=http://127.0.0.1:1"}, "cdn-purge")
	if err == nil || !strings.HasPrefix(err.Error(), "cdn-purge: ") || !strings.Contains(err.Error(), "CDN_ADMIN_SECRET is not set") {
		t.Fatalf("Join without a secret: %v, want an error naming cdn-purge and CDN_ADMIN_SECRET", err)
	}
	// Started standalone with nothing set (a Knative function whose
	// Secret is missing), it used to purge the make-run POPs with the
	// public development secret; now it does not start.
	err = d.Join(map[string]string{}, "cdn-warm")
	if err == nil || !strings.Contains(err.Error(), "CDN_POPS is not set") || !strings.Contains(err.Error(), "CDN_ADMIN_SECRET is not set") {
		t.Fatalf("Join with nothing set: %v, want an error naming CDN_POPS and CDN_ADMIN_SECRET", err)
	}

	var buf bytes.Buffer
	given := slog.New(slog.NewJSONHandler(&buf, nil))
	d = popadmin.Driver{}
	d.Log = given
	cfg := map[string]string{"CDN_POPS": "a=eu=http://127.0.0.1:1,b=us=http://127.0.0.1:2", "CDN_ADMIN_SECRET": "adm"}
	if err := d.Join(cfg, "cdn-warm"); err != nil {
		t.Fatalf("Join: %v", err)
	}
	if len(d.POPs) != 2 || d.POPs[1].Region != "us" || d.Client.Secret != "adm" {
		t.Fatalf("joined POPs %+v, secret %q", d.POPs, d.Client.Secret)
	}
	if d.Log != given {
		t.Fatal("Join replaced the logger the function was given")
	}
}

// The event check refuses what the trigger should never deliver, naming the
// function and the event, and decodes what it should.
func TestDecode(t *testing.T) {
	t.Parallel()
	var d popadmin.Driver
	if err := d.Join(map[string]string{"CDN_POPS": "a=eu=http://127.0.0.1:1", "CDN_ADMIN_SECRET": "adm"}, "cdn-warm"); err != nil {
		t.Fatal(err)
	}
	mk := func(typ string, data any) event.Event {
		e := event.New()
		e.SetID("e1")
		e.SetSource("/test")
		e.SetType(typ)
		if s, ok := data.(string); ok {
			_ = e.SetData("application/json", []byte(s))
		} else {
			_ = e.SetData("application/json", data)
		}
		return e
	}
	cases := []struct {
		name    string
		e       event.Event
		wantErr string
		want    string
	}{
		{"wanted type", mk(eventtype.TrackPublished, eventtype.TrackData{TrackID: "t1"}), "", "t1"},
		{"other type", mk(eventtype.TrackRenditionsReplaced, eventtype.TrackData{TrackID: "t1"}), "cdn-warm: unexpected event type " + eventtype.TrackRenditionsReplaced, ""},
		{"malformed data", mk(eventtype.TrackPublished, `{"track_id":`), "cdn-warm: decode e1", ""},
	}
	for _, c := range cases {
		var got eventtype.TrackData
		err := d.Decode(c.e, eventtype.TrackPublished, &got)
		switch {
		case c.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%s: err = %v, want %q", c.name, err, c.wantErr)
			}
		case err != nil:
			t.Errorf("%s: %v", c.name, err)
		case got.TrackID != c.want:
			t.Errorf("%s: decoded track %q, want %q", c.name, got.TrackID, c.want)
		}
	}
}
