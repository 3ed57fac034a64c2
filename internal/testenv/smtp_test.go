package testenv

import (
	"encoding/json"
	"net/http"
	"net/smtp"
	"net/url"
	"testing"
	"time"
)

func TestSMTPCapturesMail(t *testing.T) {
	t.Parallel()
	smtpURL, apiURL := SMTP(t)
	u, err := url.Parse(smtpURL)
	if err != nil {
		t.Fatal(err)
	}
	msg := "From: noreply@overture.test\r\nTo: listener@example.com\r\nSubject: Welcome to Overture\r\n\r\nHello.\r\n"
	if err := smtp.SendMail(u.Host, nil, "noreply@overture.test", []string{"listener@example.com"}, []byte(msg)); err != nil {
		t.Fatalf("send: %v", err)
	}
	WaitFor(t, 5*time.Minute, "mailpit to hold the message", func() bool {
		var list struct {
			Total    int `json:"total"`
			Messages []struct {
				Subject string `json:"Subject"`
				To      []struct {
					Address string `json:"Address"`
				} `json:"To"`
			} `json:"messages"`
		}
		resp, err := http.Get(apiURL + "/api/v1/messages")
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(resp.Body).Decode(&list)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if list.Total > 1 {
			t.Fatalf("mailpit holds %d messages, want 1", list.Total)
		}
		if list.Total == 1 {
			m := list.Messages[0]
			if m.Subject != "Welcome to Overture" || len(m.To) != 1 || m.To[0].Address != "listener@example.com" {
				t.Fatalf("captured %+v", m)
			}
		}
		return list.Total == 1
	})
}
