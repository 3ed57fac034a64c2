package platformtest

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Mail is one message mailpit holds, for one recipient.
type Mail struct {
	To, Subject, Text string
}

// Mails reads every message mailpit holds, with its text (and HTML).
func (p *Platform) Mails(t *testing.T) []Mail {
	t.Helper()
	var list struct {
		Messages []struct {
			ID      string `json:"ID"`
			Subject string `json:"Subject"`
			To      []struct {
				Address string `json:"Address"`
			} `json:"To"`
		} `json:"messages"`
	}
	p.GetJSON(t, p.MailAPI+"/api/v1/messages?limit=500", &list)
	var out []Mail
	for _, m := range list.Messages {
		var msg struct {
			Text string `json:"Text"`
			HTML string `json:"HTML"`
		}
		p.GetJSON(t, p.MailAPI+"/api/v1/message/"+m.ID, &msg)
		for _, to := range m.To {
			out = append(out, Mail{To: to.Address, Subject: m.Subject, Text: msg.Text + " " + msg.HTML})
		}
	}
	return out
}

// MailLink waits for a mail to addr and returns its first link containing
// marker.
func (p *Platform) MailLink(t *testing.T, addr, marker string) string {
	t.Helper()
	var link string
	require.Eventually(t, func() bool {
		for _, m := range p.Mails(t) {
			if !strings.EqualFold(m.To, addr) {
				continue
			}
			for _, f := range strings.Fields(m.Text) {
				if strings.HasPrefix(f, "http") && strings.Contains(f, marker) {
					link = f
					return true
				}
			}
		}
		return false
	}, 2*time.Minute, 200*time.Millisecond, "no mail to %s with %s", addr, marker)
	return link
}
