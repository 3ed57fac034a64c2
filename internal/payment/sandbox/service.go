package sandbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

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
	sb  *Sandbox
	ln  net.Listener
	srv *http.Server
	Log *slog.Logger
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

// Start builds the sandbox from cfg and listens on PAYMENT_SANDBOX_ADDR.
func (s *Service) Start(ctx context.Context, cfg map[string]string) error {
	if s.Log == nil {
		s.Log = slog.Default().With("service", s.Name())
	}
	addr := cfg[KeyAddr]
	if addr == "off" {
		return nil
	}
	if addr == "" {
		addr = DefaultAddr
	}
	c := Config{WebhookURL: cfg[KeyWebhookURL], WebhookSecret: cfg[payment.KeyWebhookSecret], WebhookDupRate: 0.1,
		WebhookDelay: 2 * time.Second, ShopID: cfg[payment.KeyShopID], SecretKey: cfg[payment.KeySecretKey],
		Seed: uint64(time.Now().UnixNano()), Log: s.Log}
	if v := cfg[KeyDupRate]; v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 || f > 1 {
			return fmt.Errorf("%s=%q: want a probability", KeyDupRate, v)
		}
		c.WebhookDupRate = f
	}
	if v := cfg[KeyWebhookWait]; v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("%s=%q: %w", KeyWebhookWait, v, err)
		}
		c.WebhookDelay = d
	}
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
		return nil
	}
	err := s.srv.Shutdown(ctx)
	s.sb.Close()
	return err
}
