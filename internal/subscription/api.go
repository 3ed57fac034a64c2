// Package subscription is the premium subscription's write model and HTTP API:
// plans and prices, the lifecycle (pending, active, past_due, canceled,
// expired, failed) with a transition table that refuses illegal moves, the
// paid-period ledger whose (subscription, period) key makes double activation
// impossible, the time-driven sweeps (pending timeout, expiry, renewal due,
// dunning), and the listener-facing API that starts the purchase saga.
//
// The saga's participants (functions/subscription, functions/renewal) use this
// package; docs/saga.md explains the saga.
package subscription

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/internal/config"
	"github.com/overture-music/overture/internal/lifecycle"
	"github.com/overture-music/overture/internal/payment"
	"github.com/overture-music/overture/internal/postgres"
	"github.com/overture-music/overture/internal/problem"
	"github.com/overture-music/overture/internal/server"
	"github.com/overture-music/overture/internal/token"
)

// Configuration keys the service reads.
const (
	KeyDatabaseURL    = "DATABASE_URL"
	KeyPendingTimeout = "SUBSCRIPTION_PENDING_TIMEOUT" // default 23h
	KeyDunning        = "DUNNING_SCHEDULE"             // default 24h,72h,120h
)

// Audience is the access-token audience the API requires.
const Audience = "overture"

// Config is the service's settings.
type Config struct {
	DatabaseURL   string               // DATABASE_URL
	Store         StoreConfig          // SUBSCRIPTION_PENDING_TIMEOUT, DUNNING_SCHEDULE
	Token         token.VerifierConfig // AUTH_JWKS_URL, AUTH_ISSUER (or PUBLIC_BASE_URL)
	Provider      payment.ClientConfig // PAYMENT_PROVIDER_URL, PAYMENT_SHOP_ID, PAYMENT_SECRET_KEY, PAYMENT_TIMEOUT
	WebhookSecret config.Secret        // PAYMENT_WEBHOOK_SECRET: verifies provider webhooks
}

// Read fills c from r; every problem is recorded on r.
func (c *Config) Read(r *config.Reader) {
	c.DatabaseURL = r.String(KeyDatabaseURL)
	c.Store.Read(r)
	c.Token = token.ReadVerifierConfig(r)
	c.Provider.Read(r)
	c.WebhookSecret = r.Secret(payment.KeyWebhookSecret)
}

// ConfigKeys lists the settings the service reads.
func (s *Service) ConfigKeys() []config.Key { return config.KeysOf(new(Config).Read) }

// Service is the subscription HTTP API, a server.Service named
// "subscription-api": the Knative Service name "subscription" belongs to the
// saga function that records paid periods, and the two must differ.
type Service struct {
	lifecycle.Base
	Store    *Store
	Verifier *token.Verifier
	Payments *payment.Processor
	Secret   string // PAYMENT_WEBHOOK_SECRET
	pool     *postgres.Pool
	mux      *http.ServeMux
}

// New returns the service; Start configures it from cfg.
func New() *Service { return &Service{} }

// Name implements server.Service.
func (s *Service) Name() string { return "subscription-api" }

// Routes implements server.Service.
func (s *Service) Routes() []server.Route {
	return []server.Route{
		{Method: http.MethodPost, Path: "/v1/subscriptions"},
		{Method: http.MethodGet, Path: "/v1/subscriptions/me"},
		{Method: http.MethodDelete, Path: "/v1/subscriptions/me"},
		{Method: http.MethodPost, Path: "/v1/payments/webhook"},
	}
}

// Start reads Config, opens and migrates the database (the subscription
// tables and the payment ledger) and builds the token verifier and the
// payment processor. A failed Start holds nothing (lifecycle.Start releases
// the pool).
func (s *Service) Start(ctx context.Context, cfg map[string]string) error {
	r := config.NewReader(cfg)
	var c Config
	c.Read(r)
	if err := r.Err(); err != nil {
		return fmt.Errorf("subscription: %w", err)
	}
	pool, err := s.OpenPool(ctx, c.DatabaseURL, Migrate, payment.Migrate)
	if err != nil {
		return fmt.Errorf("subscription: %w", err)
	}
	s.pool = pool
	s.Store = c.Store.Store(pool.Pool)
	if s.Verifier == nil {
		s.Verifier = c.Token.Verifier()
	}
	s.Payments = &payment.Processor{Pool: pool.Pool, Provider: c.Provider.Client(), Log: s.Log}
	s.Secret = c.WebhookSecret.Reveal()
	return nil
}

// StoreConfig is the write model's settings.
type StoreConfig struct {
	PendingTimeout time.Duration   // SUBSCRIPTION_PENDING_TIMEOUT, default 23h
	Dunning        []time.Duration // DUNNING_SCHEDULE, default 24h,72h,120h
}

// Read fills c from r; every problem is recorded on r.
func (c *StoreConfig) Read(r *config.Reader) {
	c.PendingTimeout = r.DurationOr(KeyPendingTimeout, 0)
	d, err := ParseSchedule(r.StringOr(KeyDunning, ""))
	if err != nil {
		r.Fail(KeyDunning, "%s", strings.TrimPrefix(err.Error(), KeyDunning+" "))
	}
	c.Dunning = d
}

// Store returns the write model on pool with c's settings.
func (c StoreConfig) Store(pool *pgxpool.Pool) *Store {
	return &Store{Pool: pool, Dunning: c.Dunning, PendingTimeout: c.PendingTimeout}
}

// NewStore builds a Store from cfg (pending timeout, dunning schedule).
func NewStore(pool *pgxpool.Pool, cfg map[string]string) (*Store, error) {
	r := config.NewReader(cfg)
	var c StoreConfig
	c.Read(r)
	if err := r.Err(); err != nil {
		return nil, err
	}
	return c.Store(pool), nil
}

func (s *Service) handler() http.Handler {
	if s.mux == nil {
		mux := http.NewServeMux()
		auth := func(h http.HandlerFunc) http.Handler { return s.Verifier.Middleware(s.Log, h) }
		mux.Handle("POST /v1/subscriptions", auth(s.create))
		mux.Handle("GET /v1/subscriptions/me", auth(s.me))
		mux.Handle("DELETE /v1/subscriptions/me", auth(s.cancel))
		mux.HandleFunc("POST /v1/payments/webhook", s.webhook)
		s.mux = mux
	}
	return s.mux
}

// ServeHTTP implements http.Handler.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler().ServeHTTP(w, r) }

var tokenRE = regexp.MustCompile(`^[A-Za-z0-9_\-]{1,64}$`)

type createRequest struct {
	Plan          string `json:"plan"`
	PaymentMethod string `json:"payment_method,omitempty"`
}

type createResponse struct {
	ID        string `json:"id"`
	Status    string `json:"status"`
	Plan      string `json:"plan"`
	Amount    int64  `json:"amount_minor"`
	Currency  string `json:"currency"`
	StatusURL string `json:"status_url"`
}

func (s *Service) create(w http.ResponseWriter, r *http.Request) {
	c, _ := token.FromContext(r.Context())
	var req createRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		problem.Write(w, r, problem.BadRequest("the body must be JSON {\"plan\": \"monthly\"|\"annual\", \"payment_method\"?: token}: "+err.Error()))
		return
	}
	fields := map[string]string{}
	if _, ok := Plans[req.Plan]; !ok {
		fields["plan"] = fmt.Sprintf("unknown plan %q: choose monthly or annual", req.Plan)
	}
	if req.PaymentMethod != "" && !tokenRE.MatchString(req.PaymentMethod) {
		fields["payment_method"] = "must be a card token of 1-64 letters, digits, '_' or '-'"
	}
	if len(fields) > 0 {
		problem.Write(w, r, problem.Validation(fields))
		return
	}
	x, err := s.Store.Create(r.Context(), c.Subject, req.Plan, req.PaymentMethod)
	if errors.Is(err, ErrAlreadySubscribed) {
		problem.Write(w, r, problem.New(http.StatusConflict, "subscription-exists",
			"you already have a subscription that is being paid, running or canceled but not yet ended; see GET /v1/subscriptions/me"))
		return
	}
	if err != nil {
		s.Log.ErrorContext(r.Context(), "create subscription", "error", err)
		problem.Error(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Location", "/v1/subscriptions/me")
	w.WriteHeader(http.StatusAccepted)
	_ = json.NewEncoder(w).Encode(createResponse{ID: x.ID, Status: x.Status, Plan: x.Plan, Amount: x.AmountMinor,
		Currency: x.Currency, StatusURL: "/v1/subscriptions/me"})
}

type meResponse struct {
	Subscription *Subscription  `json:"subscription"`
	Premium      bool           `json:"premium"`
	History      []HistoryEntry `json:"history"`
	Periods      []PaidPeriod   `json:"periods"`
}

func (s *Service) me(w http.ResponseWriter, r *http.Request) {
	c, _ := token.FromContext(r.Context())
	x, err := s.Store.Current(r.Context(), c.Subject)
	if errors.Is(err, ErrNoSubscription) {
		problem.Write(w, r, problem.New(http.StatusNotFound, "no-subscription", "you have no subscription; buy one with POST /v1/subscriptions"))
		return
	}
	if err != nil {
		s.Log.ErrorContext(r.Context(), "read subscription", "error", err)
		problem.Error(w, r, err)
		return
	}
	hs, ps, err := s.Store.History(r.Context(), x.ID)
	if err != nil {
		s.Log.ErrorContext(r.Context(), "read subscription history", "error", err)
		problem.Error(w, r, err)
		return
	}
	premium := (x.Status == StatusActive || x.Status == StatusPastDue || x.Status == StatusCanceled) && x.PeriodEnd != nil && x.PeriodEnd.After(time.Now())
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(meResponse{Subscription: x, Premium: premium, History: hs, Periods: ps})
}

func (s *Service) cancel(w http.ResponseWriter, r *http.Request) {
	c, _ := token.FromContext(r.Context())
	x, err := s.Store.Cancel(r.Context(), c.Subject)
	switch {
	case errors.Is(err, ErrNoSubscription):
		problem.Write(w, r, problem.New(http.StatusNotFound, "no-subscription", "you have no running subscription to cancel"))
	case errors.Is(err, ErrPurchaseInProgress):
		problem.Write(w, r, problem.New(http.StatusConflict, "purchase-in-progress", "your purchase is still being paid; cancel once it is active"))
	case errors.Is(err, ErrAlreadyCanceled):
		problem.Write(w, r, problem.New(http.StatusConflict, "already-canceled", "your subscription is already canceled; premium lasts until the paid period ends"))
	case err != nil:
		s.Log.ErrorContext(r.Context(), "cancel subscription", "error", err)
		problem.Error(w, r, err)
	default:
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"subscription": x})
	}
}

func (s *Service) webhook(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	if err != nil {
		problem.Write(w, r, problem.BadRequest("could not read the notification body"))
		return
	}
	n, err := payment.VerifyWebhook(s.Secret, body, r.Header.Get(payment.SignatureHeader), time.Now(), 0)
	switch {
	case errors.Is(err, payment.ErrNotSigned), errors.Is(err, payment.ErrInvalidSignature),
		errors.Is(err, payment.ErrBadSignature), errors.Is(err, payment.ErrSignatureTooOld):
		problem.Write(w, r, problem.New(http.StatusUnauthorized, "invalid-webhook-signature", err.Error()))
		return
	case err != nil:
		problem.Write(w, r, problem.BadRequest("the notification is not a payment notification: "+err.Error()))
		return
	}
	err = s.Payments.Webhook(r.Context(), n)
	switch {
	case errors.Is(err, payment.ErrUnknownPayment):
		problem.Write(w, r, problem.New(http.StatusNotFound, "unknown-payment", fmt.Sprintf("notification %s is about payment %s, which Overture did not create; nothing was changed", n.Event, n.Object.ID)))
	case errors.Is(err, payment.ErrPaymentMismatch):
		s.Log.WarnContext(r.Context(), "payment webhook flagged for reconciliation", "event", n.Event, "provider_payment_id", n.Object.ID, "error", err)
		problem.Write(w, r, problem.New(http.StatusUnprocessableEntity, "payment-mismatch", fmt.Sprintf("payment %s does not match the Overture payment it names (amount, currency or id); it settled nothing and was flagged for reconciliation", n.Object.ID)))
	case err != nil:
		s.Log.WarnContext(r.Context(), "payment webhook", "event", n.Event, "error", err)
		problem.Write(w, r, problem.New(http.StatusServiceUnavailable, "payment-provider-unavailable", "could not re-fetch the payment from the provider; deliver again later"))
	default:
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":true}` + "\n"))
	}
}
