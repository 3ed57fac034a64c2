package broker

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/overture-music/overture/internal/problem"
)

// maxIngressBody bounds one ingress request.
const maxIngressBody = 8 << 20

// ServeHTTP is the broker ingress: POST /<namespace>/<broker> (POST / is the
// default broker) with a CloudEvent in binary or structured mode, or a batch
// (application/cloudevents-batch+json). It answers 202 once every event is
// stored (or wanted by no trigger), 400 problem+json when any event is
// malformed or invalid — and then stores none of them.
func (b *Broker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st := b.def
	path := strings.Trim(r.URL.Path, "/")
	if path != "" {
		ns, name, ok := strings.Cut(path, "/")
		if !ok || strings.Contains(name, "/") {
			problem.Write(w, r, problem.New(http.StatusNotFound, "no-such-broker", fmt.Sprintf("the ingress path is /<namespace>/<broker>, got %q", r.URL.Path)))
			return
		}
		if st = b.brokers[ns+"/"+name]; st == nil {
			problem.Write(w, r, problem.New(http.StatusNotFound, "no-such-broker", fmt.Sprintf("no Broker %s/%s", ns, name)))
			return
		}
	}
	if st == nil {
		problem.Write(w, r, problem.New(http.StatusNotFound, "no-such-broker", "no default broker: POST to /<namespace>/<broker>"))
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		problem.Write(w, r, problem.New(http.StatusMethodNotAllowed, "method-not-allowed", "CloudEvents are sent to the broker with POST"))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxIngressBody)
	events, err := readEvents(r)
	if err != nil {
		b.m.rejected.WithLabelValues(st.key).Inc()
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			problem.Write(w, r, problem.New(http.StatusRequestEntityTooLarge, "too-large", fmt.Sprintf("request body exceeds %d bytes", maxIngressBody)))
			return
		}
		problem.Write(w, r, problem.BadRequest(err.Error()))
		return
	}
	if err := b.ingestTo(r.Context(), st, events); err != nil {
		if errors.Is(err, ErrInvalidEvent) {
			b.m.rejected.WithLabelValues(st.key).Inc()
			problem.Write(w, r, problem.BadRequest(err.Error()))
			return
		}
		if errors.Is(err, ErrStopped) {
			w.Header().Set("Retry-After", "1")
			problem.Write(w, r, problem.New(http.StatusServiceUnavailable, "broker-stopped", "the broker is shutting down; retry"))
			return
		}
		b.log.ErrorContext(r.Context(), "broker: ingress failed", "broker", st.key, "events", len(events), "error", err)
		problem.Write(w, r, problem.New(http.StatusInternalServerError, "not-stored", "the events were not stored; retry"))
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

func readEvents(r *http.Request) ([]event.Event, error) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == "application/cloudevents-batch+json" {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		var raws []json.RawMessage
		if err := json.Unmarshal(body, &raws); err != nil {
			return nil, fmt.Errorf("malformed CloudEvents batch: %v", err)
		}
		if len(raws) == 0 {
			return nil, errors.New("empty CloudEvents batch")
		}
		events := make([]event.Event, len(raws))
		for i, raw := range raws {
			if err := json.Unmarshal(raw, &events[i]); err != nil {
				return nil, fmt.Errorf("malformed CloudEvent %d in batch: %v", i, err)
			}
			if err := events[i].Validate(); err != nil {
				return nil, fmt.Errorf("invalid CloudEvent %d in batch: %v", i, err)
			}
		}
		return events, nil
	}
	e, err := cehttp.NewEventFromHTTPRequest(r)
	if err != nil {
		return nil, fmt.Errorf("malformed CloudEvent: %v", err)
	}
	if err := e.Validate(); err != nil {
		return nil, fmt.Errorf("invalid CloudEvent: %v", err)
	}
	return []event.Event{*e}, nil
}
