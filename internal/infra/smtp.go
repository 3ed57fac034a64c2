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
	// Args are more mailpit flags, e.g. --smtp-allowed-recipients.
	Args []string
}

// StartSMTP starts mailpit on 127.0.0.1 (`go tool mailpit`, pinned in go.mod;
// MAILPIT_BIN overrides the binary) and returns once mailpit itself holds
// both ports (a free port another process took first is picked again). A
// second start on the same Dir keeps the messages.
func StartSMTP(ctx context.Context, o SMTPOptions) (*SMTP, error) {
	bin, err := ToolBin("mailpit", "MAILPIT_BIN")
	if err != nil {
		return nil, fmt.Errorf("smtp: %w", err)
	}
	if o.MaxMessages == 0 {
		o.MaxMessages = 5000
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("smtp: %w", err)
	}
	logPath := filepath.Join(o.Dir, "mailpit.log")
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ports := []int{o.SMTPPort, o.HTTPPort}
	proc, err := startListening(wctx, logPath, ports, func(ports []int) (*Process, error) {
		return Start("smtp", logPath, syscall.SIGTERM, nil, bin, append([]string{
			"--smtp", fmt.Sprintf("127.0.0.1:%d", ports[0]), "--listen", fmt.Sprintf("127.0.0.1:%d", ports[1]),
			"--database", filepath.Join(o.Dir, "mailpit.db"),
			"--max", itoa(o.MaxMessages),
			"--smtp-auth-accept-any", "--smtp-auth-allow-insecure",
			"--smtp-disable-rdns", "--disable-version-check", "--quiet"}, o.Args...)...)
	})
	if err != nil {
		return nil, fmt.Errorf("smtp: %w", err)
	}
	return &SMTP{Process: proc, SMTPPort: ports[0], HTTPPort: ports[1]}, nil
}
