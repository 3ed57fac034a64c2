package subscription

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Statuses of a subscription. pending, active, past_due, canceled and expired
// follow Stripe's lifecycle; failed is a purchase whose first payment never
// succeeded (Stripe's incomplete_expired).
const (
	StatusPending  = "pending"
	StatusActive   = "active"
	StatusPastDue  = "past_due"
	StatusCanceled = "canceled"
	StatusExpired  = "expired"
	StatusFailed   = "failed"
)

// transitions is the lifecycle: from → allowed targets. active → active is a
// renewal, past_due → past_due a further failed dunning retry; canceled → canceled records a period paid while cancel was asked.
var transitions = map[string][]string{
	StatusPending:  {StatusActive, StatusFailed},
	StatusActive:   {StatusActive, StatusPastDue, StatusCanceled},
	StatusPastDue:  {StatusActive, StatusPastDue, StatusCanceled},
	StatusCanceled: {StatusCanceled, StatusExpired},
	StatusExpired:  {},
	StatusFailed:   {},
}

// ErrIllegalTransition is returned for a move the lifecycle forbids.
type ErrIllegalTransition struct{ From, To string }

func (e *ErrIllegalTransition) Error() string {
	return fmt.Sprintf("subscription cannot go from %s to %s", e.From, e.To)
}

// CanTransition reports whether from → to is allowed.
func CanTransition(from, to string) bool {
	return slices.Contains(transitions[from], to)
}

// Transition returns nil when from → to is allowed.
func Transition(from, to string) error {
	if _, ok := transitions[from]; !ok {
		return fmt.Errorf("unknown subscription status %q", from)
	}
	if !CanTransition(from, to) {
		return &ErrIllegalTransition{From: from, To: to}
	}
	return nil
}

// Terminal reports whether status is final.
func Terminal(status string) bool { return len(transitions[status]) == 0 }

// Plan is a purchasable plan.
type Plan struct {
	Name        string
	AmountMinor int64 // RUB kopecks
	Currency    string
	Months      int
}

// Plans are the prices, in one place.
var Plans = map[string]Plan{
	"monthly": {Name: "monthly", AmountMinor: 29900, Currency: "RUB", Months: 1},
	"annual":  {Name: "annual", AmountMinor: 299000, Currency: "RUB", Months: 12},
}

// End returns the end of a period of p starting at start.
func (p Plan) End(start time.Time) time.Time { return start.AddDate(0, p.Months, 0) }

// ParseSchedule reads a dunning schedule "24h,72h,120h": offsets from the
// first failed renewal charge at which the charge is retried.
func ParseSchedule(s string) ([]time.Duration, error) {
	if s == "" {
		return []time.Duration{24 * time.Hour, 72 * time.Hour, 120 * time.Hour}, nil
	}
	var out []time.Duration
	var prev time.Duration
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		d, err := time.ParseDuration(part)
		if err != nil {
			return nil, fmt.Errorf("DUNNING_SCHEDULE %q: %w", s, err)
		}
		if d <= prev {
			return nil, fmt.Errorf("DUNNING_SCHEDULE %q: offsets must increase", s)
		}
		out, prev = append(out, d), d
	}
	return out, nil
}
