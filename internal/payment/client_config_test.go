package payment_test

import (
	"strings"
	"testing"
	"time"

	"github.com/overture-music/overture/internal/payment"
)

// The payment function or subscription-api started standalone without the
// provider's settings used to talk to the sandbox with its demo credentials;
// now it does not start, and the error names every missing key and no value.
func TestFromConfigFailsClosed(t *testing.T) {
	t.Parallel()
	_, err := payment.FromConfig(map[string]string{})
	if err == nil {
		t.Fatal("a client was built without the provider's settings")
	}
	for _, k := range []string{"PAYMENT_PROVIDER_URL is not set", "PAYMENT_SHOP_ID is not set", "PAYMENT_SECRET_KEY is not set"} {
		if !strings.Contains(err.Error(), k) {
			t.Errorf("error %q does not name %s", err, k)
		}
	}
	_, err = payment.FromConfig(map[string]string{"PAYMENT_PROVIDER_URL": "not a url", "PAYMENT_SHOP_ID": "shop",
		"PAYMENT_SECRET_KEY": "live_s3cr3t", "PAYMENT_TIMEOUT": "fast"})
	if err == nil || !strings.Contains(err.Error(), "PAYMENT_PROVIDER_URL") || !strings.Contains(err.Error(), "PAYMENT_TIMEOUT") || strings.Contains(err.Error(), "live_s3cr3t") {
		t.Fatalf("malformed settings: %v", err)
	}
	c, err := payment.FromConfig(map[string]string{"PAYMENT_PROVIDER_URL": "https://pay.example/v3/", "PAYMENT_SHOP_ID": "shop",
		"PAYMENT_SECRET_KEY": "live_s3cr3t", "PAYMENT_TIMEOUT": "3s"})
	if err != nil || c.BaseURL != "https://pay.example/v3" || c.ShopID != "shop" || c.SecretKey != "live_s3cr3t" || c.HTTP.Timeout != 3*time.Second {
		t.Fatalf("complete settings: %+v %v", c, err)
	}
}
