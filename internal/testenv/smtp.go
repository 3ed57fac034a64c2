package testenv

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/overture-music/overture/internal/infra"
)

// SMTP starts a private SMTP sink (mailpit) for the test. smtpURL is where
// mail is sent (smtp://127.0.0.1:PORT, any or no credentials, no TLS); apiURL
// is mailpit's HTTP base, whose GET /api/v1/messages lists what arrived and
// GET /api/v1/message/{ID} returns one message. The sink stops when the test
// ends.
func SMTP(t testing.TB) (smtpURL, apiURL string) {
	t.Helper()
	dir, err := os.MkdirTemp(Dir(), "smtp-")
	if err != nil {
		t.Fatalf("smtp dir: %v", err)
	}
	if _, err := infra.ToolBin("mailpit", "MAILPIT_BIN"); err != nil {
		t.Fatalf("test SMTP: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := infra.StartSMTP(ctx, infra.SMTPOptions{Dir: dir})
	if err != nil {
		t.Fatalf("start test SMTP: %v", err)
	}
	t.Cleanup(func() { _ = s.Stop(5 * time.Second) })
	return s.URL(), s.APIURL()
}
