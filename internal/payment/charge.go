package payment

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Retry bounds how hard Charge and Refund insist before giving up with
// ErrAmbiguous (the caller's redelivery continues later with the same key).
type Retry struct {
	Attempts int           // create calls with the same key (default 3)
	Backoff  time.Duration // between them, doubled each time (default 100 ms)
	Polls    int           // GETs of a pending payment (default 5)
}

func (r Retry) withDefaults() Retry {
	if r.Attempts == 0 {
		r.Attempts = 3
	}
	if r.Backoff == 0 {
		r.Backoff = 100 * time.Millisecond
	}
	if r.Polls == 0 {
		r.Polls = 5
	}
	return r
}

// Charge creates a payment under key and returns it in a final state
// (succeeded or canceled). An ambiguous answer is retried with the SAME key —
// the provider then returns the payment it already made — and a pending
// payment is polled by id. If the outcome is still unknown it returns an
// error wrapping ErrAmbiguous; a definitive refusal is an *APIError.
func Charge(ctx context.Context, p Provider, key string, req CreateRequest, r Retry) (*Payment, error) {
	r = r.withDefaults()
	pay, err := sameKey(ctx, r, "charge", key, func() (*Payment, error) { return p.CreatePayment(ctx, key, req) })
	if err != nil {
		return nil, err
	}
	if pay.Final() {
		return pay, nil
	}
	return poll(ctx, p, pay, r)
}

// sameKey calls create (a provider create under key) up to r.Attempts times,
// backing off between calls, for as long as its answer is ambiguous: the
// provider answers a repeated key with what the first call made, so asking
// again is how an ambiguous answer becomes a definite one. A definitive error
// ends it at once; when the attempts or ctx run out the error wraps
// ErrAmbiguous. what names the operation in that error.
func sameKey[T any](ctx context.Context, r Retry, what, key string, create func() (T, error)) (T, error) {
	var zero T
	var last error
	delay := r.Backoff
	for i := 0; i < r.Attempts; i++ {
		if i > 0 {
			if err := sleep(ctx, delay); err != nil {
				return zero, fmt.Errorf("%w: %v", ErrAmbiguous, err)
			}
			delay *= 2
		}
		v, err := create()
		switch {
		case err == nil:
			return v, nil
		case errors.Is(err, ErrAmbiguous):
			last = err
		default:
			return zero, err
		}
	}
	return zero, fmt.Errorf("%s with key %s after %d attempts: %w", what, key, r.Attempts, last)
}

func poll(ctx context.Context, p Provider, pay *Payment, r Retry) (*Payment, error) {
	delay := r.Backoff
	for i := 0; i < r.Polls; i++ {
		if err := sleep(ctx, delay); err != nil {
			return nil, fmt.Errorf("%w: payment %s still %s: %v", ErrAmbiguous, pay.ID, pay.Status, err)
		}
		delay *= 2
		got, err := p.GetPayment(ctx, pay.ID)
		if err != nil {
			if errors.Is(err, ErrAmbiguous) {
				continue
			}
			return nil, err
		}
		if got.Status == StatusWaitingForCapture {
			got, err = p.CapturePayment(ctx, "capture-"+got.ID, got.ID, got.Amount)
			if err != nil {
				if errors.Is(err, ErrAmbiguous) {
					continue
				}
				return nil, err
			}
		}
		if got.Final() {
			return got, nil
		}
		pay = got
	}
	return nil, fmt.Errorf("%w: payment %s still %s", ErrAmbiguous, pay.ID, pay.Status)
}

// RefundPayment creates a full refund of paymentID under key, retrying ambiguous
// answers with the same key. A refund the provider reports pending is returned
// as is (the refund.succeeded webhook or a later call settles it).
func RefundPayment(ctx context.Context, p Provider, key string, req RefundRequest, r Retry) (*Refund, error) {
	return sameKey(ctx, r.withDefaults(), "refund", key, func() (*Refund, error) { return p.CreateRefund(ctx, key, req) })
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
