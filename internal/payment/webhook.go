package payment

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SignatureHeader carries the webhook signature, "t=<unix seconds>,v1=<hex>"
// where v1 is HMAC-SHA256(secret, "<t>.<raw body>") — Stripe's scheme.
// YooKassa itself signs nothing (it is authenticated by source IP); the
// sandbox signs, and handlers re-fetch the object either way, so a forged
// body can at worst make us ask the provider about a payment.
const SignatureHeader = "X-Payment-Signature"

// DefaultTolerance is how old a signed webhook may be.
const DefaultTolerance = 5 * time.Minute

// Webhook verification errors.
var (
	ErrNotSigned        = errors.New("webhook has no signature header")
	ErrInvalidSignature = errors.New("webhook signature header is malformed")
	ErrSignatureTooOld  = errors.New("webhook signature timestamp is outside the tolerance")
	ErrBadSignature     = errors.New("webhook signature does not match")
)

// Sign returns the SignatureHeader value for body at t.
func Sign(secret string, body []byte, t time.Time) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + mac(secret, ts, body)
}

func mac(secret, ts string, body []byte) string {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte(ts))
	h.Write([]byte("."))
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

// VerifyWebhook checks header against body and returns the decoded
// notification. tolerance 0 means DefaultTolerance.
func VerifyWebhook(secret string, body []byte, header string, now time.Time, tolerance time.Duration) (*Notification, error) {
	if header == "" {
		return nil, ErrNotSigned
	}
	if tolerance == 0 {
		tolerance = DefaultTolerance
	}
	var ts string
	var sigs []string
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, ErrInvalidSignature
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			sigs = append(sigs, v)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return nil, ErrInvalidSignature
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return nil, ErrSignatureTooOld
	}
	want := mac(secret, ts, body)
	ok := false
	for _, s := range sigs {
		if hmac.Equal([]byte(s), []byte(want)) {
			ok = true
		}
	}
	if !ok {
		return nil, ErrBadSignature
	}
	var n Notification
	if err := json.Unmarshal(body, &n); err != nil {
		return nil, fmt.Errorf("webhook body: %w", err)
	}
	if n.Event == "" || n.Object.ID == "" {
		return nil, fmt.Errorf("webhook body: missing event or object id")
	}
	return &n, nil
}
