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
	// PaymentMethodID is the provider's saved payment method (renewals charge it).
	PaymentMethodID string `json:"payment_method_id,omitempty"`
	// Attempt numbers the charges of one period (dunning retries); Outcome is
	// "completed" or "failed" (set in saga commands and replies).
	Attempt int    `json:"attempt,omitempty"`
	Outcome string `json:"outcome,omitempty"`
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
	// Period numbers the paid period this fact is about (1 = first).
	Period int `json:"period,omitempty"`
}

var subscriptionSpecs = []Spec{
	{Type: SubscriptionRequested, Data: SubscriptionRequestedData{}, Doc: "A listener asked to buy premium; the payment function charges.",
		Producers: []string{"subscription"}, Outbox: true, Consumers: []string{"payment", "saga-manager"}},
	{Type: PaymentCompleted, Data: PaymentData{}, Doc: "A charge was captured.",
		Producers: []string{"payment"}, Outbox: true, Consumers: []string{"subscription"}},
	{Type: PaymentFailed, Data: PaymentData{}, Doc: "A charge was declined or failed for good; the saga ends and the user is emailed.",
		Producers: []string{"payment"}, Outbox: true, Consumers: []string{"subscription", "notification"}},
	{Type: PaymentRefunded, Data: PaymentData{}, Doc: "A captured charge was refunded (compensation); the user is emailed.",
		Producers: []string{"payment"}, Outbox: true, Consumers: []string{"notification"}},
	{Type: SubscriptionActivated, Data: SubscriptionData{}, Doc: "A paid period was recorded; the user function grants premium and the user is emailed.",
		Producers: []string{"subscription"}, Outbox: true, Consumers: []string{"user", "notification"}},
	{Type: SubscriptionFailed, Data: SubscriptionData{}, Doc: "A paid subscription could not be activated; the payment function refunds.",
		Producers: []string{"subscription"}, Outbox: true, Consumers: []string{"payment"}},
	{Type: SubscriptionRenewed, Data: SubscriptionData{}, Doc: "A renewal charge succeeded and extended the paid period.",
		Producers: []string{"subscription"}, Outbox: true, Consumers: []string{"user", "notification"}},
	{Type: SubscriptionRenewalFailed, Data: SubscriptionData{}, Doc: "A renewal charge failed; the subscription is past_due with a dunning retry scheduled.",
		Producers: []string{"subscription"}, Outbox: true, Consumers: []string{"notification"}},
	{Type: SubscriptionCanceled, Data: SubscriptionData{}, Doc: "Renewal was stopped (by the listener or after dunning); premium lasts until the period ends.",
		Producers: []string{"subscription"}, Outbox: true, Consumers: []string{"notification"}},
	{Type: SubscriptionExpired, Data: SubscriptionData{}, Doc: "The paid period ended without renewal; the user function revokes premium.",
		Producers: []string{"subscription"}, Outbox: true, Consumers: []string{"user", "notification"}},
}

// Recurring payments and the orchestration mode of the purchase saga
// (SAGA_MODE=orchestration): the SubscriptionWorkflowManager ("saga-manager")
// sends commands to the participants and they answer with replies. Facts
// (PaymentCompleted, SubscriptionActivated …) are published in both modes; in
// orchestration mode participants act only on commands.
const (
	SubscriptionRenewalDue = "music.overture.subscription.renewal_due.v1"

	SagaChargePayment = "music.overture.saga.charge_payment.v1"
	SagaRefundPayment = "music.overture.saga.refund_payment.v1"
	SagaApplyPayment  = "music.overture.saga.apply_payment.v1"
	SagaGrantPremium  = "music.overture.saga.grant_premium.v1"
	SagaStepSucceeded = "music.overture.saga.step_succeeded.v1"
	SagaStepFailed    = "music.overture.saga.step_failed.v1"
)

// RenewalDueData asks for the charge of paid period Period (>1) with the saved
// payment method; Attempt counts dunning retries of that period (1 = first).
type RenewalDueData struct {
	SubscriptionID  string `json:"subscription_id"`
	UserID          string `json:"user_id"`
	Plan            string `json:"plan"`
	AmountMinor     int64  `json:"amount_minor"`
	Currency        string `json:"currency"`
	PaymentMethodID string `json:"payment_method_id"`
	// PaymentToken is the card token of a first purchase (orchestration's
	// charge command reuses this struct; renewals leave it empty).
	PaymentToken string `json:"payment_token,omitempty"`
	Period       int    `json:"period"`
	Attempt      int    `json:"attempt"`
}

// SagaCommand is the data of every saga command. SagaID names the saga
// instance (subscription id and period); Step and Attempt let the manager
// match the reply. Exactly one of Charge, Payment, Subscription is set,
// depending on the command: Charge for charge_payment, Payment for
// refund_payment and apply_payment (with Payment.Outcome), Subscription for
// grant_premium.
type SagaCommand struct {
	SagaID       string            `json:"saga_id"`
	Step         string            `json:"step"`
	Attempt      int               `json:"attempt"`
	Charge       *RenewalDueData   `json:"charge,omitempty"`
	Payment      *PaymentData      `json:"payment,omitempty"`
	Subscription *SubscriptionData `json:"subscription,omitempty"`
}

// SagaReply answers a SagaCommand (type step_succeeded or step_failed).
type SagaReply struct {
	SagaID       string            `json:"saga_id"`
	Step         string            `json:"step"`
	Attempt      int               `json:"attempt"`
	Payment      *PaymentData      `json:"payment,omitempty"`
	Subscription *SubscriptionData `json:"subscription,omitempty"`
	Reason       string            `json:"reason,omitempty"`
}

var sagaSpecs = []Spec{
	{Type: SubscriptionRenewalDue, Data: RenewalDueData{}, Doc: "A paid period ends (or a dunning retry is due): charge the saved payment method for the next period.",
		Producers: []string{"renewal"}, Outbox: true, Consumers: []string{"payment", "saga-manager"}},
	{Type: SagaChargePayment, Data: SagaCommand{}, Doc: "Orchestration command: charge (initial or renewal) with an Idempotence-Key per period and attempt.",
		Producers: []string{"saga-manager"}, Outbox: true, Consumers: []string{"payment"}},
	{Type: SagaRefundPayment, Data: SagaCommand{}, Doc: "Orchestration compensation: refund the captured payment of the saga (resolving an ambiguous charge first).",
		Producers: []string{"saga-manager"}, Outbox: true, Consumers: []string{"payment"}},
	{Type: SagaApplyPayment, Data: SagaCommand{}, Doc: "Orchestration command: record the payment outcome on the subscription (paid period, or release / past_due on failure).",
		Producers: []string{"saga-manager"}, Outbox: true, Consumers: []string{"subscription"}},
	{Type: SagaGrantPremium, Data: SagaCommand{}, Doc: "Orchestration command (retriable, after the pivot): grant premium until the paid period ends.",
		Producers: []string{"saga-manager"}, Outbox: true, Consumers: []string{"user"}},
	{Type: SagaStepSucceeded, Data: SagaReply{}, Doc: "Orchestration reply: a participant completed a command.",
		Producers: []string{"payment", "subscription", "user"}, Outbox: true, Consumers: []string{"saga-manager"}},
	{Type: SagaStepFailed, Data: SagaReply{}, Doc: "Orchestration reply: a participant refused a command for a business reason.",
		Producers: []string{"payment", "subscription"}, Outbox: true, Consumers: []string{"saga-manager"}},
}
