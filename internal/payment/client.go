package payment

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/overture-music/overture/internal/config"
)

// Client talks to a YooKassa-compatible API over HTTP (the sandbox in
// development and tests). BaseURL is e.g. "http://127.0.0.1:8095/v3"; ShopID and
// SecretKey are sent as HTTP Basic credentials.
type Client struct {
	BaseURL   string
	ShopID    string
	SecretKey string
	// HTTP is the client; its Timeout bounds every call (default 10 s). A call
	// that times out is ambiguous.
	HTTP *http.Client
}

// NewClient returns a client with the given per-call timeout.
func NewClient(baseURL, shopID, secretKey string, timeout time.Duration) *Client {
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	return &Client{BaseURL: strings.TrimRight(baseURL, "/"), ShopID: shopID, SecretKey: secretKey,
		HTTP: &http.Client{Timeout: timeout}}
}

// CreatePayment implements Provider.
func (c *Client) CreatePayment(ctx context.Context, key string, req CreateRequest) (*Payment, error) {
	var p Payment
	if err := c.do(ctx, http.MethodPost, "/payments", key, req, &p); err != nil {
		return nil, fmt.Errorf("create payment: %w", err)
	}
	return &p, nil
}

// CapturePayment implements Provider.
func (c *Client) CapturePayment(ctx context.Context, key, id string, amount Amount) (*Payment, error) {
	var p Payment
	if err := c.do(ctx, http.MethodPost, "/payments/"+id+"/capture", key, map[string]Amount{"amount": amount}, &p); err != nil {
		return nil, fmt.Errorf("capture payment %s: %w", id, err)
	}
	return &p, nil
}

// GetPayment implements Provider.
func (c *Client) GetPayment(ctx context.Context, id string) (*Payment, error) {
	var p Payment
	if err := c.do(ctx, http.MethodGet, "/payments/"+id, "", nil, &p); err != nil {
		return nil, fmt.Errorf("get payment %s: %w", id, err)
	}
	return &p, nil
}

// CreateRefund implements Provider.
func (c *Client) CreateRefund(ctx context.Context, key string, req RefundRequest) (*Refund, error) {
	var r Refund
	if err := c.do(ctx, http.MethodPost, "/refunds", key, req, &r); err != nil {
		return nil, fmt.Errorf("create refund: %w", err)
	}
	return &r, nil
}

func (c *Client) do(ctx context.Context, method, path, key string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, rd)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.SetBasicAuth(c.ShopID, c.SecretKey)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Idempotence-Key", key)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return err // our own cancellation, not the provider's ambiguity
		}
		return fmt.Errorf("%w: %v", ErrAmbiguous, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%w: read answer: %v", ErrAmbiguous, err)
	}
	switch {
	case resp.StatusCode >= 500:
		return fmt.Errorf("%w: status %d", ErrAmbiguous, resp.StatusCode)
	case resp.StatusCode >= 400:
		e := &APIError{Status: resp.StatusCode}
		if json.Unmarshal(data, e) != nil || e.Code == "" {
			e.Code, e.Description = "http_"+fmt.Sprint(resp.StatusCode), strings.TrimSpace(string(data))
		}
		return e
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%w: decode answer: %v", ErrAmbiguous, err)
	}
	return nil
}

// Configuration keys of the provider adapter. The URL and the credentials
// are required: there is no fallback to the sandbox, whose address and demo
// credentials only `make run` supplies (the embedded platform's defaults).
const (
	KeyProviderURL   = "PAYMENT_PROVIDER_URL"   // e.g. https://api.yookassa.ru/v3 (required)
	KeyShopID        = "PAYMENT_SHOP_ID"        // Basic-auth user (required)
	KeySecretKey     = "PAYMENT_SECRET_KEY"     // Basic-auth password (required)
	KeyTimeout       = "PAYMENT_TIMEOUT"        // per call, default 10s
	KeyWebhookSecret = "PAYMENT_WEBHOOK_SECRET" // HMAC key of webhook signatures
)

// ClientConfig is the provider adapter's settings.
type ClientConfig struct {
	URL       string        // PAYMENT_PROVIDER_URL
	ShopID    string        // PAYMENT_SHOP_ID
	SecretKey config.Secret // PAYMENT_SECRET_KEY
	Timeout   time.Duration // PAYMENT_TIMEOUT, default 10s
}

// Read fills c from r; every problem is recorded on r.
func (c *ClientConfig) Read(r *config.Reader) {
	c.URL = r.URL(KeyProviderURL)
	c.ShopID = r.String(KeyShopID)
	c.SecretKey = r.Secret(KeySecretKey)
	c.Timeout = r.DurationOr(KeyTimeout, 10*time.Second)
}

// Client returns the provider client c describes.
func (c ClientConfig) Client() *Client {
	return NewClient(c.URL, c.ShopID, c.SecretKey.Reveal(), c.Timeout)
}

// FromConfig builds a client from cfg; a missing or malformed key is an error
// that names it (every such key at once).
func FromConfig(cfg map[string]string) (*Client, error) {
	r := config.NewReader(cfg)
	var c ClientConfig
	c.Read(r)
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("payment provider: %w", err)
	}
	return c.Client(), nil
}
