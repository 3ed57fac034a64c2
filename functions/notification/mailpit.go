package notification

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Mailpit reads the mail store of the SMTP sink Overture runs locally and in
// tests (axllent/mailpit) through its HTTP API. The service uses it for one
// thing: before sending again an email whose previous attempt may have
// reached the server (a 'pending' row), it asks whether that Message-ID is
// already there — the "query before retry" payment providers recommend.
// Tests use it to count what arrived.
type Mailpit struct {
	// BaseURL is mailpit's UI/API base, e.g. http://127.0.0.1:8025.
	BaseURL string
	// Client defaults to a client with a 10 s timeout.
	Client *http.Client
}

// MailpitMessage is the part of mailpit's message summary the service uses.
type MailpitMessage struct {
	ID        string `json:"ID"`
	MessageID string `json:"MessageID"`
	Subject   string `json:"Subject"`
	To        []struct {
		Name    string `json:"Name"`
		Address string `json:"Address"`
	} `json:"To"`
}

type mailpitList struct {
	Total         int              `json:"total"`
	MessagesCount int              `json:"messages_count"`
	Messages      []MailpitMessage `json:"messages"`
}

var defaultMailpitClient = &http.Client{Timeout: 10 * time.Second}

func (m *Mailpit) get(ctx context.Context, path string, q url.Values, into any) error {
	c := m.Client
	if c == nil {
		c = defaultMailpitClient
	}
	u := strings.TrimRight(m.BaseURL, "/") + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("mailpit request: %w", err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("mailpit %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("mailpit %s: %s: %s", path, resp.Status, strings.TrimSpace(string(b)))
	}
	if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
		return fmt.Errorf("mailpit %s: decode: %w", path, err)
	}
	return nil
}

// SearchMessageID returns the stored messages whose Message-ID is id (without
// angle brackets). Mailpit's "message-id:" filter matches substrings, so the
// result is filtered to exact matches.
func (m *Mailpit) SearchMessageID(ctx context.Context, id string) ([]MailpitMessage, error) {
	var out []MailpitMessage
	err := m.pages(ctx, "/api/v1/search", url.Values{"query": {"message-id:" + id}}, func(ms []MailpitMessage) {
		for _, msg := range ms {
			if msg.MessageID == id {
				out = append(out, msg)
			}
		}
	})
	return out, err
}

// Delivered reports whether a message with Message-ID id reached the store.
func (m *Mailpit) Delivered(ctx context.Context, id string) (bool, error) {
	ms, err := m.SearchMessageID(ctx, id)
	return len(ms) > 0, err
}

// Messages returns every stored message, newest first.
func (m *Mailpit) Messages(ctx context.Context) ([]MailpitMessage, error) {
	var out []MailpitMessage
	err := m.pages(ctx, "/api/v1/messages", nil, func(ms []MailpitMessage) { out = append(out, ms...) })
	return out, err
}

const mailpitPage = 500

func (m *Mailpit) pages(ctx context.Context, path string, q url.Values, each func([]MailpitMessage)) error {
	if q == nil {
		q = url.Values{}
	}
	for start := 0; ; start += mailpitPage {
		q.Set("start", fmt.Sprint(start))
		q.Set("limit", fmt.Sprint(mailpitPage))
		var page mailpitList
		if err := m.get(ctx, path, q, &page); err != nil {
			return err
		}
		each(page.Messages)
		if len(page.Messages) < mailpitPage {
			return nil
		}
	}
}

// CountByMessageID counts the messages in the mailpit at apiURL by
// Message-ID (without angle brackets). An exactly-once check expects 1 for
// [MessageID] of every event that warrants an email, and no key above 1.
func CountByMessageID(ctx context.Context, apiURL string) (map[string]int, error) {
	ms, err := (&Mailpit{BaseURL: apiURL}).Messages(ctx)
	if err != nil {
		return nil, err
	}
	counts := make(map[string]int, len(ms))
	for _, msg := range ms {
		counts[msg.MessageID]++
	}
	return counts, nil
}
