// Package telemetry holds what every long-running piece of Overture shares for
// being observed: JSON logs that carry the trace id, Prometheus metrics and the
// W3C traceparent that travels in the CloudEvents distributed-tracing extension.
//
// The trace is carried, not created per hop: the CloudEvents extension names the
// trace that started the work, so a handler copies the incoming traceparent into
// every event it emits ([Propagate]) and logs with it ([WithTrace]).
package telemetry

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"
)

// TraceparentExtension is the CloudEvents distributed-tracing extension name.
const TraceparentExtension = "traceparent"

type traceKey struct{}

// WithTrace returns a context carrying the W3C traceparent tp.
func WithTrace(ctx context.Context, tp string) context.Context {
	if tp == "" {
		return ctx
	}
	return context.WithValue(ctx, traceKey{}, tp)
}

// Trace returns the traceparent in ctx, or "".
func Trace(ctx context.Context) string {
	tp, _ := ctx.Value(traceKey{}).(string)
	return tp
}

// TraceID returns the 32-hex trace id of a traceparent ("00-<trace>-<span>-<flags>").
func TraceID(tp string) string {
	parts := strings.Split(tp, "-")
	if len(parts) != 4 || len(parts[1]) != 32 {
		return ""
	}
	return parts[1]
}

// NewTraceparent starts a new sampled trace.
func NewTraceparent() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return "00-" + hex.EncodeToString(b[:16]) + "-" + hex.EncodeToString(b[16:]) + "-01"
}

// FromEvent returns ctx carrying e's traceparent, if it has one.
func FromEvent(ctx context.Context, e event.Event) context.Context {
	if tp, ok := e.Extensions()[TraceparentExtension].(string); ok {
		return WithTrace(ctx, tp)
	}
	return ctx
}

// Propagate sets the traceparent of ctx on e unless e already carries one.
func Propagate(ctx context.Context, e *event.Event) {
	if e == nil {
		return
	}
	if _, ok := e.Extensions()[TraceparentExtension]; ok {
		return
	}
	if tp := Trace(ctx); tp != "" {
		e.SetExtension(TraceparentExtension, tp)
	}
}

// NewLogger returns a JSON slog logger writing to w (stderr when nil) whose
// records carry trace_id when the context given to the log call has a trace.
func NewLogger(w io.Writer, level slog.Leveler) *slog.Logger {
	if w == nil {
		w = os.Stderr
	}
	return slog.New(traceHandler{slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})})
}

type traceHandler struct{ slog.Handler }

func (h traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := TraceID(Trace(ctx)); id != "" {
		r.AddAttrs(slog.String("trace_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h traceHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return traceHandler{h.Handler.WithAttrs(as)}
}

func (h traceHandler) WithGroup(name string) slog.Handler {
	return traceHandler{h.Handler.WithGroup(name)}
}

// LevelFromEnv reads LOG_LEVEL (debug, info, warn, error); info by default.
func LevelFromEnv() slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(os.Getenv("LOG_LEVEL"))); err != nil {
		return slog.LevelInfo
	}
	return l
}
