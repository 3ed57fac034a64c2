// Package sandbox is a stand-in for the card payment provider (YooKassa's v3
// API shape) that runs here: a real HTTP server with test cards that succeed,
// decline, lack funds, answer too slowly or fail with a 500 — before or after
// recording the payment — and with webhooks delivered at least once, sometimes
// twice and out of order, signed with HMAC.
//
// It exists because a bank cannot run in tests, and the saga's invariants (no
// double charge, every capture backs a period or a refund) are only worth
// anything if the provider misbehaves the way real ones do. The ledger it
// keeps is the ground truth the fault-injection test checks against.
package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/overture-music/overture/internal/payment"
	"github.com/overture-music/overture/internal/server"
)

// DefaultAddr is where `make run` starts the sandbox.
const DefaultAddr = "127.0.0.1:8095"

// Test card tokens (payment_token of a create request).
const (
	CardSuccess           = "tok_success"              // succeeds (also the default)
	CardDecline           = "tok_decline"              // canceled: general_decline
	CardInsufficientFunds = "tok_insufficient_funds"   // canceled: insufficient_funds
	CardSlow              = "tok_slow"                 // succeeds, but answers after SlowDelay
	Card500Before         = "tok_500_before"           // first try: 500, nothing recorded
	Card500After          = "tok_500_after"            // first try: recorded as succeeded, then 500
	CardRenewalDecline    = "tok_renewal_insufficient" // succeeds now; charges of its saved method lack funds
	CardIssuerOutage      = "tok_issuer_outage"        // 500 (nothing recorded) for OutageFor after a key's first try, then succeeds
)

// Cards lists every test card.
var Cards = []string{CardSuccess, CardDecline, CardInsufficientFunds, CardSlow, Card500Before, Card500After, CardRenewalDecline, CardIssuerOutage}

// Config shapes the sandbox. Rates are probabilities in [0,1] applied to every
// create (payment or refund) on top of the test card's own behaviour.
type Config struct {
	ShopID    string // default "sandbox-shop"
	SecretKey string // default "sandbox-secret"
	Seed      uint64

	SlowDelay     time.Duration // default 2 s: longer than the client's timeout in tests
	SlowRate      float64
	Fail500Before float64
	Fail500After  float64
	// OutageFor is how long CardIssuerOutage keeps failing (default 8 s).
	OutageFor time.Duration

	WebhookURL     string
	WebhookSecret  string
	WebhookDupRate float64       // chance a notification is delivered twice
	WebhookDelay   time.Duration // max random delay per delivery (reordering); default 200 ms
	WebhookRetries int           // deliveries of one notification on non-2xx; default 8

	Log *slog.Logger
}

// LedgerEntry is one payment as the provider's books hold it.
type LedgerEntry struct {
	ID             string            `json:"id"`
	Key            string            `json:"key"`
	Status         string            `json:"status"`
	AmountMinor    int64             `json:"amount_minor"`
	RefundedMinor  int64             `json:"refunded_minor"`
	Refunds        int               `json:"refunds"`
	Metadata       map[string]string `json:"metadata,omitempty"`
	SavedMethodID  string            `json:"saved_method_id,omitempty"`
	ChargedSavedID string            `json:"charged_saved_method_id,omitempty"`
}

type record struct {
	pay      payment.Payment
	key      string
	reqHash  string
	card     string
	refunded int64
	refunds  int
}

type refundRecord struct {
	ref     payment.Refund
	reqHash string
}

// Sandbox is the provider; it is an http.Handler serving /v3/... and
// GET /sandbox/ledger.
type Sandbox struct {
	cfg Config
	mux *http.ServeMux

	mu         sync.Mutex
	rng        *rand.Rand
	payments   map[string]*record // by id
	byKey      map[string]string  // idempotence key → payment id
	failedOnce map[string]bool    // keys whose first try already failed (500 cards)
	firstSeen  map[string]time.Time
	refunds    map[string]*refundRecord
	refundKey  map[string]string
	methods    map[string]string // saved method id → card token

	wg     sync.WaitGroup
	ctx    context.Context
	cancel context.CancelFunc
	hc     *http.Client
	stats  Stats
}

// Stats counts what the sandbox did (webhook deliveries included).
type Stats struct {
	Creates, Replays, Slow, Fail500Before, Fail500After int
	Webhooks, WebhookDuplicates, WebhookFailures        int
}

// New returns a sandbox; Close stops its webhook deliveries.
func New(cfg Config) *Sandbox {
	if cfg.ShopID == "" {
		cfg.ShopID = "sandbox-shop"
	}
	if cfg.SecretKey == "" {
		cfg.SecretKey = "sandbox-secret"
	}
	if cfg.SlowDelay == 0 {
		cfg.SlowDelay = 2 * time.Second
	}
	if cfg.OutageFor == 0 {
		cfg.OutageFor = 8 * time.Second
	}
	if cfg.WebhookDelay == 0 {
		cfg.WebhookDelay = 200 * time.Millisecond
	}
	if cfg.WebhookRetries == 0 {
		cfg.WebhookRetries = 8
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Sandbox{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x5eed)),
		payments: map[string]*record{}, byKey: map[string]string{}, failedOnce: map[string]bool{}, firstSeen: map[string]time.Time{},
		refunds: map[string]*refundRecord{}, refundKey: map[string]string{}, methods: map[string]string{},
		ctx: ctx, cancel: cancel, hc: &http.Client{Timeout: 5 * time.Second}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v3/payments", s.auth(s.createPayment))
	mux.HandleFunc("GET /v3/payments/{id}", s.auth(s.getPayment))
	mux.HandleFunc("POST /v3/payments/{id}/capture", s.auth(s.capture))
	mux.HandleFunc("POST /v3/refunds", s.auth(s.createRefund))
	mux.HandleFunc("GET /v3/refunds/{id}", s.auth(s.getRefund))
	mux.HandleFunc("GET /sandbox/ledger", s.auth(s.ledger))
	server.Health(mux, nil)
	s.mux = mux
	return s
}

// ServeHTTP implements http.Handler.
func (s *Sandbox) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Serve listens on addr (DefaultAddr when empty) until ctx ends.
func (s *Sandbox) Serve(ctx context.Context, addr string, ready chan<- string) error {
	if addr == "" {
		addr = DefaultAddr
	}
	defer s.Close()
	return server.Listen(ctx, addr, s, s.cfg.Log, ready)
}

// SetWebhookURL points notifications somewhere (tests learn the URL late).
func (s *Sandbox) SetWebhookURL(u string) {
	s.mu.Lock()
	s.cfg.WebhookURL = u
	s.mu.Unlock()
}

// Close stops pending webhook deliveries and waits for them.
func (s *Sandbox) Close() {
	s.cancel()
	s.wg.Wait()
}

// Ledger returns every payment the sandbox holds.
func (s *Sandbox) Ledger() []LedgerEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]LedgerEntry, 0, len(s.payments))
	for _, r := range s.payments {
		minor, _ := r.pay.Amount.Minor()
		e := LedgerEntry{ID: r.pay.ID, Key: r.key, Status: r.pay.Status, AmountMinor: minor,
			RefundedMinor: r.refunded, Refunds: r.refunds, Metadata: r.pay.Metadata}
		if r.pay.PaymentMethod != nil {
			if r.pay.PaymentMethod.Saved {
				e.SavedMethodID = r.pay.PaymentMethod.ID
			}
			if strings.HasPrefix(r.card, "saved:") {
				e.ChargedSavedID = r.pay.PaymentMethod.ID
			}
		}
		out = append(out, e)
	}
	return out
}

// Stats returns the counters.
func (s *Sandbox) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

func (s *Sandbox) auth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || u != s.cfg.ShopID || p != s.cfg.SecretKey {
			apiError(w, http.StatusUnauthorized, "invalid_credentials", "shop id or secret key is wrong")
			return
		}
		h(w, r)
	}
}

func apiError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"type": "error", "code": code, "description": desc})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Sandbox) chance(p float64) bool { return p > 0 && s.rng.Float64() < p }

func (s *Sandbox) createPayment(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get("Idempotence-Key")
	if key == "" || len(key) > 64 {
		apiError(w, http.StatusBadRequest, "invalid_request", "Idempotence-Key header (1-64 chars) is required")
		return
	}
	var req payment.CreateRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		apiError(w, http.StatusBadRequest, "invalid_request", "body: "+err.Error())
		return
	}
	minor, err := req.Amount.Minor()
	if err != nil || minor <= 0 || req.Amount.Currency == "" {
		apiError(w, http.StatusBadRequest, "invalid_request", "amount must be positive with a currency")
		return
	}
	hash := fmt.Sprintf("%s|%s|%s|%s", req.Amount.Value, req.Amount.Currency, req.PaymentToken, req.PaymentMethodID)

	s.mu.Lock()
	if id, ok := s.byKey[key]; ok { // idempotent replay: the payment made the first time
		rec := s.payments[id]
		s.stats.Replays++
		if rec.reqHash != hash {
			s.mu.Unlock()
			apiError(w, http.StatusBadRequest, "invalid_request", "Idempotence-Key was used with other parameters")
			return
		}
		p := rec.pay
		s.mu.Unlock()
		writeJSON(w, p)
		return
	}
	card := req.PaymentToken
	if req.PaymentMethodID != "" {
		c, ok := s.methods[req.PaymentMethodID]
		if !ok {
			s.mu.Unlock()
			apiError(w, http.StatusBadRequest, "invalid_request", "payment_method_id is not a saved method of this shop")
			return
		}
		card = "saved:" + c
	}
	if card == "" {
		card = CardSuccess
	}
	base := strings.TrimPrefix(card, "saved:")
	switch base {
	case CardSuccess, CardDecline, CardInsufficientFunds, CardSlow, Card500Before, Card500After, CardRenewalDecline, CardIssuerOutage:
	default:
		s.mu.Unlock()
		apiError(w, http.StatusBadRequest, "invalid_request", "unknown test card token "+base)
		return
	}
	first := !s.failedOnce[key]
	if _, ok := s.firstSeen[key]; !ok {
		s.firstSeen[key] = time.Now()
	}
	if base == CardIssuerOutage && time.Since(s.firstSeen[key]) < s.cfg.OutageFor {
		s.failedOnce[key] = true
		s.stats.Fail500Before++
		s.mu.Unlock()
		apiError(w, http.StatusInternalServerError, "internal_server_error", "the card issuer is unavailable (nothing was recorded)")
		return
	}
	if (base == Card500Before && first) || s.chance(s.cfg.Fail500Before) {
		s.failedOnce[key] = true
		s.stats.Fail500Before++
		s.mu.Unlock()
		apiError(w, http.StatusInternalServerError, "internal_server_error", "try again later (nothing was recorded)")
		return
	}
	slow := base == CardSlow && first || s.chance(s.cfg.SlowRate)
	fail500After := base == Card500After && first || s.chance(s.cfg.Fail500After)
	s.failedOnce[key] = true
	now := time.Now().UTC()
	rec := &record{key: key, reqHash: hash, card: card, pay: payment.Payment{
		ID: uuid.NewString(), Status: payment.StatusPending, Amount: req.Amount, Description: req.Description,
		Metadata: req.Metadata, CreatedAt: now, Test: true,
	}}
	s.payments[rec.pay.ID] = rec
	s.byKey[key] = rec.pay.ID
	s.stats.Creates++
	if slow {
		s.stats.Slow++
	}
	s.mu.Unlock()

	if slow { // the answer takes longer than the client waits, the payment still completes
		select {
		case <-time.After(s.cfg.SlowDelay):
		case <-s.ctx.Done():
		}
	}
	s.mu.Lock()
	s.settle(rec, req, card)
	p := rec.pay
	if fail500After {
		s.stats.Fail500After++
	}
	s.mu.Unlock()
	s.notify("payment."+p.Status, p.ID, p.Status, "")
	if fail500After {
		apiError(w, http.StatusInternalServerError, "internal_server_error", "try again later")
		return
	}
	writeJSON(w, p)
}

// settle decides the payment per its card; s.mu is held.
func (s *Sandbox) settle(rec *record, req payment.CreateRequest, card string) {
	saved := strings.HasPrefix(card, "saved:")
	base := strings.TrimPrefix(card, "saved:")
	decline := ""
	switch {
	case base == CardDecline:
		decline = payment.ReasonGeneralDecline
	case base == CardInsufficientFunds, base == CardRenewalDecline && saved:
		decline = payment.ReasonInsufficientFunds
	}
	m := &payment.Method{Type: "bank_card", ID: req.PaymentMethodID, Title: "Bank card *4242"}
	if !saved {
		m.ID = "pm_" + uuid.NewString()
	} else {
		m.Saved = true
	}
	rec.pay.PaymentMethod = m
	if decline != "" {
		rec.pay.Status = payment.StatusCanceled
		rec.pay.Cancellation = &payment.Cancellation{Party: "payment_network", Reason: decline}
		return
	}
	if !saved && req.SavePaymentMethod {
		m.Saved = true
		s.methods[m.ID] = base
	}
	if req.Capture {
		now := time.Now().UTC()
		rec.pay.Status, rec.pay.Paid, rec.pay.CapturedAt = payment.StatusSucceeded, true, &now
	} else {
		rec.pay.Status, rec.pay.Paid = payment.StatusWaitingForCapture, true
	}
}

func (s *Sandbox) getPayment(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	rec, ok := s.payments[r.PathValue("id")]
	var p payment.Payment
	if ok {
		p = rec.pay
	}
	s.mu.Unlock()
	if !ok {
		apiError(w, http.StatusNotFound, "not_found", "payment "+r.PathValue("id")+" does not exist")
		return
	}
	writeJSON(w, p)
}

func (s *Sandbox) capture(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Idempotence-Key") == "" {
		apiError(w, http.StatusBadRequest, "invalid_request", "Idempotence-Key header is required")
		return
	}
	s.mu.Lock()
	rec, ok := s.payments[r.PathValue("id")]
	if !ok {
		s.mu.Unlock()
		apiError(w, http.StatusNotFound, "not_found", "payment does not exist")
		return
	}
	changed := false
	switch rec.pay.Status {
	case payment.StatusWaitingForCapture:
		now := time.Now().UTC()
		rec.pay.Status, rec.pay.CapturedAt, changed = payment.StatusSucceeded, &now, true
	case payment.StatusSucceeded:
	default:
		st := rec.pay.Status
		s.mu.Unlock()
		apiError(w, http.StatusBadRequest, "invalid_request", "payment is "+st+", not waiting_for_capture")
		return
	}
	p := rec.pay
	s.mu.Unlock()
	if changed {
		s.notify("payment.succeeded", p.ID, p.Status, "")
	}
	writeJSON(w, p)
}

func (s *Sandbox) createRefund(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get("Idempotence-Key")
	if key == "" || len(key) > 64 {
		apiError(w, http.StatusBadRequest, "invalid_request", "Idempotence-Key header (1-64 chars) is required")
		return
	}
	var req payment.RefundRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		apiError(w, http.StatusBadRequest, "invalid_request", "body: "+err.Error())
		return
	}
	minor, err := req.Amount.Minor()
	if err != nil || minor <= 0 {
		apiError(w, http.StatusBadRequest, "invalid_request", "refund amount must be positive")
		return
	}
	hash := req.PaymentID + "|" + req.Amount.Value
	s.mu.Lock()
	if id, ok := s.refundKey[key]; ok {
		ref := s.refunds[id]
		s.stats.Replays++
		s.mu.Unlock()
		if ref.reqHash != hash {
			apiError(w, http.StatusBadRequest, "invalid_request", "Idempotence-Key was used with other parameters")
			return
		}
		writeJSON(w, ref.ref)
		return
	}
	if s.chance(s.cfg.Fail500Before) {
		s.stats.Fail500Before++
		s.mu.Unlock()
		apiError(w, http.StatusInternalServerError, "internal_server_error", "try again later (nothing was recorded)")
		return
	}
	rec, ok := s.payments[req.PaymentID]
	if !ok {
		s.mu.Unlock()
		apiError(w, http.StatusBadRequest, "invalid_request", "payment "+req.PaymentID+" does not exist")
		return
	}
	paid, _ := rec.pay.Amount.Minor()
	if rec.pay.Status != payment.StatusSucceeded || rec.refunded+minor > paid {
		st := rec.pay.Status
		s.mu.Unlock()
		apiError(w, http.StatusBadRequest, "invalid_request", fmt.Sprintf("payment is %s with %d of %d refunded; cannot refund %d", st, rec.refunded, paid, minor))
		return
	}
	rec.refunded += minor
	rec.refunds++
	ref := &refundRecord{reqHash: hash, ref: payment.Refund{ID: uuid.NewString(), PaymentID: req.PaymentID,
		Status: payment.StatusSucceeded, Amount: req.Amount, CreatedAt: time.Now().UTC()}}
	s.refunds[ref.ref.ID] = ref
	s.refundKey[key] = ref.ref.ID
	fail := s.chance(s.cfg.Fail500After)
	if fail {
		s.stats.Fail500After++
	}
	out := ref.ref
	s.mu.Unlock()
	s.notify("refund.succeeded", out.ID, out.Status, out.PaymentID)
	if fail {
		apiError(w, http.StatusInternalServerError, "internal_server_error", "try again later")
		return
	}
	writeJSON(w, out)
}

func (s *Sandbox) getRefund(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	ref, ok := s.refunds[r.PathValue("id")]
	s.mu.Unlock()
	if !ok {
		apiError(w, http.StatusNotFound, "not_found", "refund does not exist")
		return
	}
	writeJSON(w, ref.ref)
}

func (s *Sandbox) ledger(w http.ResponseWriter, _ *http.Request) { writeJSON(w, s.Ledger()) }

// notify schedules the webhook for an object: at least once, sometimes twice,
// each copy after a random delay (so copies of different events reorder).
func (s *Sandbox) notify(evt, id, status, paymentID string) {
	s.mu.Lock()
	url := s.cfg.WebhookURL
	if url == "" {
		s.mu.Unlock()
		return
	}
	copies := 1
	if s.chance(s.cfg.WebhookDupRate) {
		copies = 2
		s.stats.WebhookDuplicates++
	}
	delays := make([]time.Duration, copies)
	for i := range delays {
		delays[i] = time.Duration(s.rng.Int64N(int64(s.cfg.WebhookDelay) + 1))
	}
	s.mu.Unlock()
	n := map[string]any{"type": "notification", "event": evt, "object": map[string]string{"id": id, "status": status, "payment_id": paymentID}}
	body, _ := json.Marshal(n)
	for _, d := range delays {
		s.wg.Add(1)
		go s.deliver(url, body, d)
	}
}

func (s *Sandbox) deliver(url string, body []byte, delay time.Duration) {
	defer s.wg.Done()
	backoff := 200 * time.Millisecond
	for attempt := 0; attempt < s.cfg.WebhookRetries; attempt++ {
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(delay):
		}
		req, err := http.NewRequestWithContext(s.ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return
		}
		req.Header.Set("Content-Type", "application/json")
		if s.cfg.WebhookSecret != "" {
			req.Header.Set(payment.SignatureHeader, payment.Sign(s.cfg.WebhookSecret, body, time.Now()))
		}
		resp, err := s.hc.Do(req)
		ok := err == nil && resp.StatusCode < 300
		if resp != nil {
			resp.Body.Close()
		}
		s.mu.Lock()
		if ok {
			s.stats.Webhooks++
		} else {
			s.stats.WebhookFailures++
		}
		s.mu.Unlock()
		if ok || (resp != nil && resp.StatusCode == http.StatusNotFound && attempt >= 2) {
			return
		}
		delay, backoff = backoff, backoff*2
	}
}
