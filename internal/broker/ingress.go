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

	"github.com/overture-music/overture/internal/identity"
	"github.com/overture-music/overture/internal/problem"
)

// maxIngressBody bounds one ingress request.
const maxIngressBody = 8 << 20

// ServeHTTP is the broker ingress: POST /<namespace>/<broker> (POST / is the
// default broker) with a CloudEvent in binary or structured mode, or a batch
// (application/cloudevents-batch+json). It answers 202 once every event is
// stored (or wanted by no trigger); otherwise it stores none of them and
// answers problem+json: 401 without a valid bearer token for the broker's
// audience (Knative's authentication-oidc), 400 when any event is malformed
// or invalid, 403 when no EventPolicy allows the token's subject to send one
// of the events (default-authorization-mode deny-all).
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
	claims, err := b.authenticate(r, st)
	if err != nil {
		b.m.denied.WithLabelValues(st.key, "unauthenticated").Inc()
		b.log.WarnContext(r.Context(), "broker: ingress request without a valid sender identity; refused", "broker", st.key, "remote", r.RemoteAddr, "error", err)
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+st.audience+`"`)
		problem.Write(w, r, problem.New(http.StatusUnauthorized, "unauthenticated",
			"the broker accepts events only with Authorization: Bearer <token>, a valid workload identity token for audience "+st.audience))
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
	if err := b.publishAs(r.Context(), st, claims.Subject, events); err != nil {
		var denied *DeniedError
		if errors.As(err, &denied) {
			p := problem.New(http.StatusForbidden, "forbidden-sender", denied.Error())
			p.Extra = map[string]any{"subject": denied.Subject, "eventType": denied.Type}
			problem.Write(w, r, p)
			return
		}
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

// authenticate verifies the request's bearer token for st's audience.
func (b *Broker) authenticate(r *http.Request, st *brokerState) (*identity.Claims, error) {
	if b.cfg.Verifier == nil {
		return nil, errors.New("this broker has no sender-identity verifier configured (Config.Verifier)")
	}
	tok := identity.BearerToken(r)
	if tok == "" {
		return nil, identity.ErrNoToken
	}
	return b.cfg.Verifier.Verify(r.Context(), tok, st.audience)
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
