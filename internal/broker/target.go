package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/overture-music/overture/internal/function"
	"github.com/overture-music/overture/internal/manifest"
	"github.com/overture-music/overture/internal/problem"
)

// target is a resolved Destination: an in-process function or an HTTP URL.
type target struct {
	dest   string // what knativeerrordest says
	h      function.Handler
	url    string
	client *http.Client
}

// failure is a failed delivery: the status code Knative would report and the
// error text (or response body) for knativeerrordata.
type failure struct {
	code int
	text string
	data []byte
}

func (f *failure) Error() string { return fmt.Sprintf("%d: %s", f.code, f.text) }

var httpClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second}}

func (b *Broker) resolve(d manifest.Destination, namespace string) (*target, error) {
	if d.Ref == nil {
		if _, err := url.Parse(d.URI); err != nil || d.URI == "" {
			return nil, fmt.Errorf("uri %q is not a URL", d.URI)
		}
		return &target{dest: d.URI, url: d.URI, client: httpClient}, nil
	}
	if d.Ref.Kind != "Service" {
		return nil, fmt.Errorf("ref to a %s %q: the embedded broker delivers only to Services (functions) and URIs", d.Ref.Kind, d.Ref.Name)
	}
	h, ok := b.cfg.Resolve(d.Ref.Name)
	if !ok || h == nil {
		return nil, fmt.Errorf("subscriber Service %q does not resolve to a function hosted in this process", d.Ref.Name)
	}
	if d.Ref.Namespace == "" {
		ref := *d.Ref
		ref.Namespace = namespace
		d.Ref = &ref
	}
	return &target{dest: d.String(), h: h}, nil
}

// deliver sends e and returns the reply, if any. The call is bounded by
// timeout even when an in-process handler ignores its context: the broker then
// stops waiting (the delivery counts as failed) and the handler's late result
// is discarded, as an HTTP client would.
func (t *target) deliver(ctx context.Context, e event.Event, timeout time.Duration) (*event.Event, *failure) {
	if t.h != nil {
		type out struct {
			reply *event.Event
			err   error
			panic any
		}
		ch := make(chan out, 1)
		go func() {
			defer func() {
				if p := recover(); p != nil {
					ch <- out{panic: p}
				}
			}()
			r, err := t.h.Handle(ctx, e.Clone())
			ch <- out{r, err, nil}
		}()
		select {
		case o := <-ch:
			if o.panic != nil {
				return nil, &failure{code: 500, text: fmt.Sprintf("handler panicked: %v", o.panic)}
			}
			if o.err != nil {
				if errors.Is(o.err, context.DeadlineExceeded) && ctx.Err() != nil {
					return nil, timeoutFailure(timeout)
				}
				code := 500
				var p *problem.Problem
				if errors.As(o.err, &p) && p.Status >= 400 {
					code = p.Status
				}
				return nil, &failure{code: code, text: o.err.Error()}
			}
			return o.reply, nil
		case <-ctx.Done():
			return nil, timeoutFailure(timeout)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, nil)
	if err != nil {
		return nil, &failure{code: 500, text: "build request: " + err.Error()}
	}
	if err := cehttp.WriteRequest(ctx, binding.ToMessage(&e), req); err != nil {
		return nil, &failure{code: 500, text: "encode event: " + err.Error()}
	}
	req.Header.Set("K-Eventing-Http-Attr", `["callable"]`)
	resp, err := t.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, timeoutFailure(timeout)
		}
		return nil, &failure{code: 503, text: "post to subscriber: " + err.Error()}
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorData))
		return nil, &failure{code: resp.StatusCode, text: fmt.Sprintf("subscriber answered %s", resp.Status), data: body}
	}
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		return nil, nil // 202/204: accepted, no reply
	}
	msg := cehttp.NewMessageFromHttpResponse(resp)
	if msg.ReadEncoding() == binding.EncodingUnknown {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		return nil, nil // 200 without an event: no reply
	}
	reply, err := binding.ToEvent(ctx, msg)
	if err != nil {
		return nil, &failure{code: 502, text: "subscriber replied with a malformed CloudEvent: " + err.Error()}
	}
	return reply, nil
}

func timeoutFailure(timeout time.Duration) *failure {
	return &failure{code: http.StatusGatewayTimeout, text: fmt.Sprintf("delivery timed out after %s", timeout)}
}
