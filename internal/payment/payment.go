// Package payment is Overture's adapter to a card payment provider, modelled
// on the YooKassa v3 API: every create carries an Idempotence-Key, the first
// payment saves the card (save_payment_method) so renewals can charge it
// without the listener (payment_method_id), refunds carry their own key, and
// webhook notifications are verified and then re-fetched by id.
//
// The one rule this package exists to enforce: an ambiguous outcome (timeout,
// connection reset, 5xx) is resolved by asking again WITH THE SAME KEY — the
// provider answers with the payment it already made — never by a new charge.
// [Charge] and [RefundPayment] implement that; [ErrAmbiguous] is what a caller gets
// when the provider still cannot say, and it must then retry later with the
// same key (the broker's redelivery does exactly that).
package payment

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Payment statuses (YooKassa's).
const (
	StatusPending           = "pending"
	StatusWaitingForCapture = "waiting_for_capture"
	StatusSucceeded         = "succeeded"
	StatusCanceled          = "canceled"
)

// Cancellation reasons the sandbox produces (a subset of YooKassa's).
const (
	ReasonInsufficientFunds = "insufficient_funds"
	ReasonGeneralDecline    = "general_decline"
	ReasonCardExpired       = "card_expired"
)

// Amount is a YooKassa amount: a decimal string in major units.
type Amount struct {
	Value    string `json:"value"`
	Currency string `json:"currency"`
}

// MinorAmount builds an Amount from minor units (kopecks).
func MinorAmount(minor int64, currency string) Amount {
	return Amount{Value: fmt.Sprintf("%d.%02d", minor/100, minor%100), Currency: currency}
}

// Minor returns the amount in minor units.
func (a Amount) Minor() (int64, error) {
	whole, frac, _ := strings.Cut(a.Value, ".")
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("amount %q: %w", a.Value, err)
	}
	if len(frac) > 2 {
		return 0, fmt.Errorf("amount %q: more than two decimals", a.Value)
	}
	for len(frac) < 2 {
		frac += "0"
	}
	f, err := strconv.ParseInt(frac, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("amount %q: %w", a.Value, err)
	}
	return w*100 + f, nil
}

// Method is a payment method as the provider reports it.
type Method struct {
	Type  string `json:"type"`
	ID    string `json:"id"`
	Saved bool   `json:"saved"`
	Title string `json:"title,omitempty"`
}

// Cancellation says why a payment was canceled.
type Cancellation struct {
	Party  string `json:"party"`
	Reason string `json:"reason"`
}

// Payment is a provider payment object.
type Payment struct {
	ID            string            `json:"id"`
	Status        string            `json:"status"`
	Paid          bool              `json:"paid"`
	Amount        Amount            `json:"amount"`
	Description   string            `json:"description,omitempty"`
	Metadata      map[string]string `json:"metadata,omitempty"`
	PaymentMethod *Method           `json:"payment_method,omitempty"`
	Cancellation  *Cancellation     `json:"cancellation_details,omitempty"`
	CreatedAt     time.Time         `json:"created_at"`
	CapturedAt    *time.Time        `json:"captured_at,omitempty"`
	Test          bool              `json:"test"`
}

// Final reports whether the payment can no longer change (refunds aside).
func (p *Payment) Final() bool { return p.Status == StatusSucceeded || p.Status == StatusCanceled }

// CreateRequest is POST /v3/payments. Exactly one of PaymentToken (a one-time
// card token from the checkout) and PaymentMethodID (a saved method) is set.
type CreateRequest struct {
	Amount            Amount            `json:"amount"`
	Capture           bool              `json:"capture"`
	PaymentToken      string            `json:"payment_token,omitempty"`
	PaymentMethodID   string            `json:"payment_method_id,omitempty"`
	SavePaymentMethod bool              `json:"save_payment_method,omitempty"`
	Description       string            `json:"description,omitempty"`
	Metadata          map[string]string `json:"metadata,omitempty"`
}

// Refund is a provider refund object.
type Refund struct {
	ID        string    `json:"id"`
	PaymentID string    `json:"payment_id"`
	Status    string    `json:"status"` // pending, succeeded, canceled
	Amount    Amount    `json:"amount"`
	CreatedAt time.Time `json:"created_at"`
}

// RefundRequest is POST /v3/refunds.
type RefundRequest struct {
	PaymentID   string `json:"payment_id"`
	Amount      Amount `json:"amount"`
	Description string `json:"description,omitempty"`
}

// Notification is a webhook body: {"type":"notification","event":…,"object":…}.
// Its object is only a hint: handlers re-fetch it by id.
type Notification struct {
	Type   string `json:"type"`
	Event  string `json:"event"` // payment.succeeded, payment.canceled, refund.succeeded …
	Object struct {
		ID        string `json:"id"`
		Status    string `json:"status"`
		PaymentID string `json:"payment_id,omitempty"`
	} `json:"object"`
}

// Provider is the payment provider's API.
type Provider interface {
	// CreatePayment creates (and with Capture, captures) a payment. The same
	// key returns the payment the first call made.
	CreatePayment(ctx context.Context, key string, req CreateRequest) (*Payment, error)
	// CapturePayment captures a payment waiting for capture.
	CapturePayment(ctx context.Context, key, id string, amount Amount) (*Payment, error)
	// GetPayment fetches a payment by id.
	GetPayment(ctx context.Context, id string) (*Payment, error)
	// CreateRefund refunds a succeeded payment; the same key returns the
	// refund the first call made.
	CreateRefund(ctx context.Context, key string, req RefundRequest) (*Refund, error)
}

// ErrAmbiguous means the provider's answer was lost (timeout, connection
// error, 5xx): the operation may or may not have happened. Ask again with the
// same key; never create a new one.
var ErrAmbiguous = errors.New("payment provider outcome unknown")

// ErrNotFound is a 404 from the provider.
var ErrNotFound = errors.New("payment provider object not found")

// APIError is a definitive 4xx answer (the request was refused and nothing
// happened), e.g. invalid_request or not_found.
type APIError struct {
	Status      int    `json:"-"`
	Code        string `json:"code"`
	Description string `json:"description"`
}

func (e *APIError) Error() string {
	return fmt.Sprintf("payment provider refused (%d %s): %s", e.Status, e.Code, e.Description)
}

// Is makes errors.Is(err, ErrNotFound) true for a 404.
func (e *APIError) Is(target error) bool { return target == ErrNotFound && e.Status == 404 }
