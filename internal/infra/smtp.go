package infra

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// SMTP is a private SMTP sink with a web UI and a JSON API: mailpit. Every
// message sent to it is kept (in Dir/mailpit.db) and never delivered.
type SMTP struct {
	*Process
	SMTPPort int
	HTTPPort int
}

// URL returns the smtp:// URL clients send to (no auth, no TLS).
func (s *SMTP) URL() string { return fmt.Sprintf("smtp://127.0.0.1:%d", s.SMTPPort) }

// APIURL returns the base URL of the web UI and of the API (/api/v1/messages).
func (s *SMTP) APIURL() string { return fmt.Sprintf("http://127.0.0.1:%d", s.HTTPPort) }

// SMTPOptions configure StartSMTP.
type SMTPOptions struct {
	Dir      string
	SMTPPort int // 0 picks a free port
	HTTPPort int // 0 picks a free port
	// MaxMessages is how many messages mailpit keeps (default 5000).
	MaxMessages int
}

// StartSMTP starts mailpit on 127.0.0.1 (`go tool mailpit`, pinned in go.mod;
// MAILPIT_BIN overrides the binary). A second start on the same Dir keeps the
// messages.
func StartSMTP(ctx context.Context, o SMTPOptions) (*SMTP, error) {
	bin, err := ToolBin("mailpit", "MAILPIT_BIN")
	if err != nil {
		return nil, fmt.Errorf("smtp: %w", err)
	}
	if o.SMTPPort == 0 {
		if o.SMTPPort, err = FreePort(); err != nil {
			return nil, err
		}
	}
	if o.HTTPPort == 0 {
		if o.HTTPPort, err = FreePort(); err != nil {
			return nil, err
		}
	}
	if o.MaxMessages == 0 {
		o.MaxMessages = 5000
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("smtp: %w", err)
	}
	smtpAddr := fmt.Sprintf("127.0.0.1:%d", o.SMTPPort)
	httpAddr := fmt.Sprintf("127.0.0.1:%d", o.HTTPPort)
	logPath := filepath.Join(o.Dir, "mailpit.log")
	proc, err := Start("smtp", logPath, syscall.SIGTERM, nil, bin,
		"--smtp", smtpAddr, "--listen", httpAddr,
		"--database", filepath.Join(o.Dir, "mailpit.db"),
		"--max", itoa(o.MaxMessages),
		"--smtp-auth-accept-any", "--smtp-auth-allow-insecure",
		"--smtp-disable-rdns", "--disable-version-check", "--quiet")
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, addr := range []string{smtpAddr, httpAddr} {
		if err := WaitTCP(wctx, proc, addr); err != nil {
			_ = proc.Stop(2 * time.Second)
			return nil, fmt.Errorf("%w\n%s", err, tail(logPath, 2000))
		}
	}
	return &SMTP{Process: proc, SMTPPort: o.SMTPPort, HTTPPort: o.HTTPPort}, nil
}
