package eventtype

import "time"

// Premium subscription saga events (choreography) and the notification-worthy
// facts of the subscription lifecycle. The saga adds its orchestration
// commands and replies below.
const (
	SubscriptionRequested     = "music.overture.subscription.requested.v1"
	PaymentCompleted          = "music.overture.payment.completed.v1"
	PaymentFailed             = "music.overture.payment.failed.v1"
	PaymentRefunded           = "music.overture.payment.refunded.v1"
	SubscriptionActivated     = "music.overture.subscription.activated.v1"
	SubscriptionFailed        = "music.overture.subscription.failed.v1"
	SubscriptionRenewed       = "music.overture.subscription.renewed.v1"
	SubscriptionRenewalFailed = "music.overture.subscription.renewal_failed.v1"
	SubscriptionCanceled      = "music.overture.subscription.canceled.v1"
	SubscriptionExpired       = "music.overture.subscription.expired.v1"
)

// SubscriptionRequestedData starts a purchase saga.
type SubscriptionRequestedData struct {
	SubscriptionID string `json:"subscription_id"`
	UserID         string `json:"user_id"`
	Plan           string `json:"plan"` // "monthly" or "annual"
	AmountMinor    int64  `json:"amount_minor"`
	Currency       string `json:"currency"` // "RUB"
	PaymentMethod  string `json:"payment_method,omitempty"`
}

// PaymentData describes a payment outcome. Purpose is "initial" or "renewal";
// Period numbers the paid period it is for (1 = first), which with
// SubscriptionID is the natural key against charging twice.
type PaymentData struct {
	PaymentID         string `json:"payment_id"`
	SubscriptionID    string `json:"subscription_id"`
	UserID            string `json:"user_id"`
	AmountMinor       int64  `json:"amount_minor"`
	Currency          string `json:"currency"`
	Purpose           string `json:"purpose"`
	Period            int    `json:"period"`
	ProviderPaymentID string `json:"provider_payment_id,omitempty"`
	Reason            string `json:"reason,omitempty"`
}

// SubscriptionData describes a subscription lifecycle fact.
type SubscriptionData struct {
	SubscriptionID string     `json:"subscription_id"`
	UserID         string     `json:"user_id"`
	Plan           string     `json:"plan"`
	Status         string     `json:"status"`
	PeriodStart    *time.Time `json:"period_start,omitempty"`
	PeriodEnd      *time.Time `json:"period_end,omitempty"`
	PaymentID      string     `json:"payment_id,omitempty"`
	AmountMinor    int64      `json:"amount_minor,omitempty"`
	Currency       string     `json:"currency,omitempty"`
	NextRetryAt    *time.Time `json:"next_retry_at,omitempty"`
	Reason         string     `json:"reason,omitempty"`
}

var subscriptionSpecs = []Spec{
	{Type: SubscriptionRequested, Data: SubscriptionRequestedData{}, Doc: "A listener asked to buy premium; the payment function charges.",
		Producers: []string{"subscription"}, Consumers: []string{"payment"}},
	{Type: PaymentCompleted, Data: PaymentData{}, Doc: "A charge was captured.",
		Producers: []string{"payment"}, Consumers: []string{"subscription"}},
	{Type: PaymentFailed, Data: PaymentData{}, Doc: "A charge was declined or failed for good; the saga ends and the user is emailed.",
		Producers: []string{"payment"}, Consumers: []string{"subscription", "notification"}},
	{Type: PaymentRefunded, Data: PaymentData{}, Doc: "A captured charge was refunded (compensation); the user is emailed.",
		Producers: []string{"payment"}, Consumers: []string{"notification"}},
	{Type: SubscriptionActivated, Data: SubscriptionData{}, Doc: "A paid period was recorded; the user function grants premium and the user is emailed.",
		Producers: []string{"subscription"}, Consumers: []string{"user", "notification"}},
	{Type: SubscriptionFailed, Data: SubscriptionData{}, Doc: "A paid subscription could not be activated; the payment function refunds.",
		Producers: []string{"subscription"}, Consumers: []string{"payment"}},
	{Type: SubscriptionRenewed, Data: SubscriptionData{}, Doc: "A renewal charge succeeded and extended the paid period.",
		Producers: []string{"subscription"}, Consumers: []string{"user", "notification"}},
	{Type: SubscriptionRenewalFailed, Data: SubscriptionData{}, Doc: "A renewal charge failed; the subscription is past_due with a dunning retry scheduled.",
		Producers: []string{"subscription"}, Consumers: []string{"notification"}},
	{Type: SubscriptionCanceled, Data: SubscriptionData{}, Doc: "Renewal was stopped (by the listener or after dunning); premium lasts until the period ends.",
		Producers: []string{"subscription"}, Consumers: []string{"notification"}},
	{Type: SubscriptionExpired, Data: SubscriptionData{}, Doc: "The paid period ended without renewal; the user function revokes premium.",
		Producers: []string{"subscription"}, Consumers: []string{"user", "notification"}},
}
