package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
)

func TestLoggerCarriesTraceID(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := NewLogger(&buf, slog.LevelInfo)
	tp := NewTraceparent()
	in := event.New()
	in.SetExtension(TraceparentExtension, tp)
	ctx := FromEvent(context.Background(), in)
	log.InfoContext(ctx, "handled")

	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("log line is not JSON: %v: %s", err, buf.String())
	}
	if got, want := rec["trace_id"], TraceID(tp); got != want {
		t.Fatalf("trace_id = %v, want %v", got, want)
	}

	out := event.New()
	Propagate(ctx, &out)
	if got := out.Extensions()[TraceparentExtension]; got != tp {
		t.Fatalf("emitted event traceparent = %v, want %v", got, tp)
	}
}

func TestTraceID(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "0af7651916cd43dd8448eb211c80319c"},
		{"garbage", ""},
		{"", ""},
		{"00-short-b7ad6b7169203331-01", ""},
	}
	for _, tt := range tests {
		if got := TraceID(tt.in); got != tt.want {
			t.Errorf("TraceID(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
