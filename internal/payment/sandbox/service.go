package sandbox

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/overture-music/overture/internal/config"
	"github.com/overture-music/overture/internal/lifecycle"
	"github.com/overture-music/overture/internal/payment"
	"github.com/overture-music/overture/internal/server"
)

// Configuration keys of the sandbox service.
const (
	KeyAddr        = "PAYMENT_SANDBOX_ADDR"             // default 127.0.0.1:8095; "off" disables it
	KeyWebhookURL  = "PAYMENT_WEBHOOK_URL"              // where notifications go
	KeyDupRate     = "PAYMENT_SANDBOX_WEBHOOK_DUP_RATE" // default 0.1
	KeyWebhookWait = "PAYMENT_SANDBOX_WEBHOOK_DELAY"    // max random delay, default 2s
)

// Service runs the sandbox inside the platform (`make run`): it listens on
// its fixed provider address so that PAYMENT_PROVIDER_URL's default reaches
// it. It has no public routes on the gateway — its API is the provider's, not
// Overture's.
type Service struct {
	lifecycle.Base
	sb  *Sandbox
	ln  net.Listener
	srv *http.Server
}

// NewService returns the sandbox service; Start configures and starts it.
func NewService() *Service { return &Service{} }

// Name implements server.Service.
func (s *Service) Name() string { return "payment-sandbox" }

// Routes implements server.Service: none on the gateway.
func (s *Service) Routes() []server.Route { return nil }

// ServeHTTP serves the provider API (also on the platform's service port).
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.sb == nil {
		http.Error(w, "payment sandbox disabled", http.StatusServiceUnavailable)
		return
	}
	s.sb.ServeHTTP(w, r)
}

// ServiceConfig is the service's settings. The credentials and webhook
// secret are what the sandbox accepts and signs with; `make run` sets them
// to the same development values the adapter sends (internal/platform).
type ServiceConfig struct {
	Addr           string // PAYMENT_SANDBOX_ADDR: default 127.0.0.1:8095, "off" disables
	WebhookURL     string
	WebhookSecret  config.Secret
	ShopID         string
	SecretKey      config.Secret
	WebhookDupRate float64
	WebhookDelay   time.Duration
}

// Read fills c from r; every problem is recorded on r.
func (c *ServiceConfig) Read(r *config.Reader) {
	c.Addr = r.StringOr(KeyAddr, DefaultAddr)
	c.WebhookURL = r.URLOr(KeyWebhookURL, "")
	c.WebhookSecret = r.SecretOptional(payment.KeyWebhookSecret)
	c.ShopID = r.StringOr(payment.KeyShopID, "")
	c.SecretKey = r.SecretOptional(payment.KeySecretKey)
	c.WebhookDupRate = 0.1
	if v := r.StringOr(KeyDupRate, ""); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 || f > 1 {
			r.Fail(KeyDupRate, "%q: want a probability", v)
		}
		c.WebhookDupRate = f
	}
	c.WebhookDelay = r.DurationOr(KeyWebhookWait, 2*time.Second)
}

// ConfigKeys lists the settings the service reads.
func (s *Service) ConfigKeys() []config.Key { return config.KeysFor[ServiceConfig]() }

// Start builds the sandbox from cfg and listens on PAYMENT_SANDBOX_ADDR.
func (s *Service) Start(ctx context.Context, cfg map[string]string) error {
	sc, err := config.Parse[ServiceConfig](cfg)
	if err != nil {
		return fmt.Errorf("payment sandbox: %w", err)
	}
	if sc.Addr == "off" {
		return nil
	}
	s.Begin()
	addr := sc.Addr
	c := Config{WebhookURL: sc.WebhookURL, WebhookSecret: sc.WebhookSecret.Reveal(), WebhookDupRate: sc.WebhookDupRate,
		WebhookDelay: sc.WebhookDelay, ShopID: sc.ShopID, SecretKey: sc.SecretKey.Reveal(),
		Seed: uint64(time.Now().UnixNano()), Log: s.Log}
	s.sb = New(c)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("payment sandbox: listen on %s: %w", addr, err)
	}
	s.ln = ln
	s.srv = &http.Server{Handler: s.sb, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.Log.Error("payment sandbox stopped", "error", err)
		}
	}()
	s.Log.Info("payment sandbox listening", "address", ln.Addr().String(), "webhook_url", c.WebhookURL)
	return nil
}

// Addr is where the sandbox listens (empty when disabled).
func (s *Service) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Stop closes the listener and pending webhook deliveries.
func (s *Service) Stop(ctx context.Context) error {
	if s.srv == nil {
		return s.Base.Stop(ctx)
	}
	err := s.srv.Shutdown(ctx)
	s.sb.Close()
	s.srv = nil
	return errors.Join(err, s.Base.Stop(ctx))
}
