package smtptest_test

import (
	"encoding/json"
	"net/http"
	"net/smtp"
	"strings"
	"testing"

	"github.com/overture-music/overture/internal/infra/smtptest"
	"github.com/overture-music/overture/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func send(addr, subject string) error {
	return smtp.SendMail(addr, nil, "a@example.com", []string{"b@example.com"},
		[]byte("Subject: "+subject+"\r\n\r\nbody\r\n"))
}

func stored(t *testing.T, api string) int {
	t.Helper()
	resp, err := http.Get(api + "/api/v1/messages")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list struct{ Total int }
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	return list.Total
}

// Down refuses mail and API calls at the sink's address; Up serves them
// again there, with the messages from before the outage.
func TestOutageKeepsAddressAndMessages(t *testing.T) {
	t.Parallel()
	s := smtptest.Start(t)
	addr := strings.TrimPrefix(s.URL(), "smtp://")
	if err := send(addr, "before"); err != nil {
		t.Fatalf("send while up: %v", err)
	}
	if n := stored(t, s.APIURL()); n != 1 {
		t.Fatalf("%d messages stored, want 1", n)
	}
	s.Down(t)
	if err := send(addr, "during"); err == nil {
		t.Fatal("mail accepted during the outage")
	}
	if _, err := http.Get(s.APIURL() + "/api/v1/messages"); err == nil {
		t.Fatal("API answered during the outage")
	}
	s.Up(t)
	if err := send(addr, "after"); err != nil {
		t.Fatalf("send after the outage: %v", err)
	}
	if n := stored(t, s.APIURL()); n != 2 {
		t.Fatalf("%d messages stored after the outage, want 2 (before and after)", n)
	}
}
