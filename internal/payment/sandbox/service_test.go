package sandbox_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/overture-music/overture/internal/payment"
	"github.com/overture-music/overture/internal/payment/sandbox"
	"github.com/overture-music/overture/internal/testenv"
)

// The service listens on its own address and delivers signed webhooks, some
// twice, to the configured URL.
func TestServiceDeliversSignedWebhooks(t *testing.T) {
	t.Parallel()
	var got, bad atomic.Int64
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if _, err := payment.VerifyWebhook("whsec", body, r.Header.Get(payment.SignatureHeader), time.Now(), 0); err != nil {
			bad.Add(1)
		}
		got.Add(1)
	}))
	defer hook.Close()
	s := sandbox.NewService()
	if err := s.Start(context.Background(), map[string]string{sandbox.KeyAddr: "127.0.0.1:0", sandbox.KeyWebhookURL: hook.URL,
		payment.KeyWebhookSecret: "whsec", sandbox.KeyDupRate: "1", sandbox.KeyWebhookWait: "10ms"}); err != nil {
		t.Fatal(err)
	}
	defer s.Stop(context.Background())
	c := payment.NewClient("http://"+s.Addr()+"/v3", "sandbox-shop", "sandbox-secret", time.Second)
	if _, err := c.CreatePayment(context.Background(), "k1", payment.CreateRequest{Amount: payment.MinorAmount(100, "RUB"), Capture: true}); err != nil {
		t.Fatal(err)
	}
	testenv.Poll(5*time.Minute, func() bool { return got.Load() >= 2 })
	if got.Load() != 2 || bad.Load() != 0 {
		t.Fatalf("webhooks: %d delivered (%d badly signed), want 2 (duplicate rate 1)", got.Load(), bad.Load())
	}
}
