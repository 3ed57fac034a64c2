package payment

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestSameKey pins the retry rule Charge and RefundPayment share: only an
// ambiguous answer is asked again (with backoff), a definitive one ends the
// retries at once, and running out of attempts or time is itself ambiguous.
func TestSameKey(t *testing.T) {
	t.Parallel()
	refused := &APIError{Status: 400, Code: "invalid_request"}
	tests := []struct {
		name      string
		answers   []error // one per call; past the end every call succeeds
		ctx       func() context.Context
		wantCalls int
		wantErr   error  // nil: success
		wantText  string // in the error
	}{
		{name: "FirstAnswerWins", wantCalls: 1},
		{name: "AmbiguousThenAnswer", answers: []error{ErrAmbiguous, ErrAmbiguous}, wantCalls: 3},
		{name: "DefinitiveErrorIsNotRetried", answers: []error{ErrAmbiguous, refused}, wantCalls: 2, wantErr: refused},
		{name: "AttemptsRunOut", answers: []error{ErrAmbiguous, ErrAmbiguous, ErrAmbiguous, ErrAmbiguous}, wantCalls: 3,
			wantErr: ErrAmbiguous, wantText: "refund with key k-1 after 3 attempts"},
		{name: "ContextEndsDuringBackoff", answers: []error{ErrAmbiguous}, wantCalls: 1, wantErr: ErrAmbiguous, wantText: "context canceled",
			ctx: func() context.Context {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return ctx
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			if tc.ctx != nil {
				ctx = tc.ctx()
			}
			calls := 0
			start := time.Now()
			got, err := sameKey(ctx, Retry{Attempts: 3, Backoff: 10 * time.Millisecond}, "refund", "k-1", func() (*Refund, error) {
				calls++
				if calls <= len(tc.answers) {
					return nil, tc.answers[calls-1]
				}
				return &Refund{ID: "r-1"}, nil
			})
			if calls != tc.wantCalls {
				t.Errorf("%d calls, want %d", calls, tc.wantCalls)
			}
			if tc.wantErr == nil {
				if err != nil || got == nil || got.ID != "r-1" {
					t.Fatalf("got %+v, %v; want the refund", got, err)
				}
			} else {
				if !errors.Is(err, tc.wantErr) || got != nil {
					t.Fatalf("got %+v, %v; want %v", got, err, tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantText) {
					t.Errorf("error %q does not say %q", err, tc.wantText)
				}
			}
			// The backoff doubles: 10 ms before the second call, 20 ms before the third.
			if least := backoffBefore(calls, 10*time.Millisecond); time.Since(start) < least {
				t.Errorf("%d calls took %v, less than the backoff %v", calls, time.Since(start), least)
			}
		})
	}
}

func backoffBefore(calls int, d time.Duration) time.Duration {
	var sum time.Duration
	for i := 1; i < calls; i++ {
		sum += d
		d *= 2
	}
	return sum
}
