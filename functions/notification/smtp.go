package notification

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	mail "github.com/wneessen/go-mail"
)

// MessageIDDomain is the right-hand side of every Message-ID this service
// writes.
const MessageIDDomain = "overture.local"

// MessageID is the Message-ID (without angle brackets) of the email caused by
// the event (source, id): the same event always yields the same Message-ID,
// so a second copy of one email is recognisable as such by any mail store.
func MessageID(source, id string) string {
	sum := sha256.Sum256([]byte(source + "|" + id))
	return hex.EncodeToString(sum[:])[:32] + "@" + MessageIDDomain
}

// ErrSMTPURL reports an unusable SMTP_URL.
var ErrSMTPURL = errors.New("invalid SMTP_URL")

// smtpConfig is a parsed SMTP_URL:
//
//	smtp://[user[:password]@]host[:port][?tls=none|opportunistic|mandatory]
//	smtps://[user[:password]@]host[:port]       (implicit TLS, port 465)
//
// smtp:// defaults to port 25 and opportunistic STARTTLS (what mailpit, which
// offers no STARTTLS, and most relays accept).
type smtpConfig struct {
	host     string
	port     int
	user     string
	password string
	ssl      bool
	tls      mail.TLSPolicy
}

func parseSMTPURL(raw string) (smtpConfig, error) {
	var c smtpConfig
	if raw == "" {
		return c, fmt.Errorf("%w: empty (want smtp://host:port)", ErrSMTPURL)
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error quotes the URL, which may hold a password.
		return c, fmt.Errorf("%w: cannot parse it", ErrSMTPURL)
	}
	switch u.Scheme {
	case "smtp":
		c.port, c.tls = 25, mail.TLSOpportunistic
	case "smtps":
		c.port, c.ssl, c.tls = 465, true, mail.TLSMandatory
	default:
		return c, fmt.Errorf("%w: scheme %q, want smtp or smtps", ErrSMTPURL, u.Scheme)
	}
	if u.Opaque != "" || u.Hostname() == "" {
		return c, fmt.Errorf("%w: no host", ErrSMTPURL)
	}
	if u.Path != "" && u.Path != "/" {
		return c, fmt.Errorf("%w: unexpected path", ErrSMTPURL)
	}
	c.host = u.Hostname()
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return c, fmt.Errorf("%w: port %q", ErrSMTPURL, p)
		}
		c.port = n
	}
	if u.User != nil {
		c.user = u.User.Username()
		c.password, _ = u.User.Password()
	}
	for k, v := range u.Query() {
		switch {
		case k == "tls" && !c.ssl && len(v) == 1:
			switch v[0] {
			case "none":
				c.tls = mail.NoTLS
			case "opportunistic":
				c.tls = mail.TLSOpportunistic
			case "mandatory":
				c.tls = mail.TLSMandatory
			default:
				return c, fmt.Errorf("%w: tls=%q, want none, opportunistic or mandatory", ErrSMTPURL, v[0])
			}
		default:
			return c, fmt.Errorf("%w: unknown parameter %q", ErrSMTPURL, k)
		}
	}
	return c, nil
}

// Addr is host:port, for logs (no credentials).
func (c smtpConfig) addr() string { return net.JoinHostPort(c.host, strconv.Itoa(c.port)) }

// sendTimeout bounds one SMTP conversation; the caller holds a row lock
// meanwhile.
const sendTimeout = 10 * time.Second

// mailer sends one message per SMTP connection. go-mail's Client keeps
// connection state, so each send gets its own: the service sends little and
// concurrent Handle calls must not share a conversation.
type mailer struct {
	cfg  smtpConfig
	from string
}

func (m *mailer) client() (*mail.Client, error) {
	opts := []mail.Option{
		mail.WithPort(m.cfg.port),
		mail.WithTimeout(sendTimeout),
		mail.WithTLSPolicy(m.cfg.tls),
	}
	if m.cfg.ssl {
		opts = append(opts, mail.WithSSLPort(false))
	}
	if m.cfg.user != "" {
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthAutoDiscover),
			mail.WithUsername(m.cfg.user), mail.WithPassword(m.cfg.password))
	}
	return mail.NewClient(m.cfg.host, opts...)
}

// outgoing is one email ready to go.
type outgoing struct {
	to        string
	messageID string
	date      time.Time
	content   Rendered
	kind      Kind
}

func (m *mailer) message(o outgoing) (*mail.Msg, error) {
	msg := mail.NewMsg()
	if err := msg.From(m.from); err != nil {
		return nil, fmt.Errorf("from address: %w", err)
	}
	if err := msg.To(o.to); err != nil {
		return nil, fmt.Errorf("%w: recipient address: %w", ErrBadEvent, err)
	}
	msg.SetMessageIDWithValue(o.messageID)
	msg.SetDateWithValue(o.date)
	msg.Subject(o.content.Subject)
	msg.SetGenHeader("X-Overture-Kind", string(o.kind))
	// Automatic mail: no out-of-office replies.
	msg.SetGenHeader(mail.HeaderXAutoResponseSuppress, "All")
	msg.SetGenHeader("Auto-Submitted", "auto-generated")
	msg.SetBodyString(mail.TypeTextPlain, o.content.Text)
	msg.AddAlternativeString(mail.TypeTextHTML, o.content.HTML)
	return msg, nil
}

// send hands o to the SMTP server; nil means the server accepted it.
func (m *mailer) send(ctx context.Context, o outgoing) error {
	msg, err := m.message(o)
	if err != nil {
		return err
	}
	c, err := m.client()
	if err != nil {
		return fmt.Errorf("smtp client for %s: %w", m.cfg.addr(), err)
	}
	ctx, cancel := context.WithTimeout(ctx, sendTimeout)
	defer cancel()
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		return fmt.Errorf("smtp send via %s: %w", m.cfg.addr(), redactAddress(err, o.to))
	}
	return nil
}

// redactedError hides the recipient's address, which go-mail's SendError
// lists ("affected recipient(s)") and servers echo in their replies, from
// the text that reaches logs and the ledger; errors.Is/As still see the cause.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

func redactAddress(err error, addr string) error {
	if addr == "" {
		return err
	}
	re := regexp.MustCompile(`(?i)` + regexp.QuoteMeta(addr))
	return &redactedError{msg: re.ReplaceAllString(err.Error(), "<recipient>"), err: err}
}

// validFrom checks MAIL_FROM at start.
func validFrom(from string) error {
	if strings.ContainsAny(from, "\r\n") {
		return errors.New("MAIL_FROM has a line break")
	}
	return mail.NewMsg().From(from)
}
