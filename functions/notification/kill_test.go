package notification

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/testenv"
)

// crashChildEnv carries the child's configuration in TestKill9AfterAccept.
const crashChildEnv = "NOTIFICATION_KILL9_CHILD"

// TestKill9AfterAccept kills a real process with SIGKILL in the worst place:
// the SMTP server has accepted the message, the ledger row is still pending
// and the dead process's lease still holds. A fresh process then takes the
// broker's redelivery and must not send a second copy.
func TestKill9AfterAccept(t *testing.T) {
	if os.Getenv(crashChildEnv) != "" {
		kill9Child()
		return
	}
	t.Parallel()
	ctx := context.Background()
	smtpURL, api := testenv.SMTP(t)
	dbURL := testenv.Postgres(t)
	// auth's tables and its account with a live confirmation secret.
	seed := New()
	seed.Log = slog.New(slog.DiscardHandler)
	if err := seed.Start(ctx, map[string]string{"DATABASE_URL": dbURL, "SMTP_URL": smtpURL, "PUBLIC_BASE_URL": testBaseURL}); err != nil {
		t.Fatal(err)
	}
	seedAccount(t, seed.pool.Pool, uid("u1"), "u1@example.com", "ru")
	secret := seedLink(t, seed.pool.Pool, "confirm", uid("u1"))
	_ = seed.Stop(ctx)
	e := event.New()
	e.SetID("kill9-1")
	e.SetSource("/overture/auth")
	e.SetType(eventtype.UserRegistered)
	if err := e.SetData(event.ApplicationJSON, eventtype.UserRegisteredData{
		UserID: uid("u1"), Email: "u1@example.com", Locale: "ru", ConfirmURL: "https://overture.test/confirm?token=" + secret}); err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := json.Marshal(map[string]string{"DATABASE_URL": dbURL, "SMTP_URL": smtpURL, "MAILPIT_URL": api, "PUBLIC_BASE_URL": testBaseURL, "EVENT": string(raw)})
	cmd := exec.Command(os.Args[0], "-test.run=^TestKill9AfterAccept$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+string(cfg))
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die by SIGKILL: %v\n%s", err, out)
	}

	msgID := MessageID(e.Source(), e.ID())
	if c := counts(t, api); c[msgID] != 1 {
		t.Fatalf("before the redelivery mailpit holds %v, want the message once", c)
	}
	n := New()
	n.Log = slog.New(slog.DiscardHandler)
	n.lease = time.Second
	if err := n.Start(ctx, map[string]string{"DATABASE_URL": dbURL, "SMTP_URL": smtpURL, "MAILPIT_URL": api, "PUBLIC_BASE_URL": testBaseURL}); err != nil {
		t.Fatal(err)
	}
	defer n.Stop(ctx)
	var state string
	if err := n.pool.QueryRow(ctx, `SELECT state FROM notification_email WHERE message_id = $1`, msgID).Scan(&state); err != nil || state != "pending" {
		t.Fatalf("after the kill the row is %q (%v), want pending", state, err)
	}
	// The broker redelivers with backoff until the dead process's lease ends.
	testenv.WaitFor(t, 5*time.Minute, "a redelivery after the dead process's lease", func() bool {
		_, err := n.Handle(ctx, e)
		if err != nil && !errors.Is(err, ErrInProgress) {
			t.Fatalf("redelivery: %v", err)
		}
		return err == nil
	})
	if _, err := n.Handle(ctx, e); err != nil {
		t.Fatal(err)
	}
	a, err := AuditDelivery(ctx, n.pool.Pool, api)
	if err != nil {
		t.Fatal(err)
	}
	if !a.ExactlyOnce() || a.Sent != 1 || a.Stored != 1 {
		t.Fatalf("after kill -9 and redelivery: %s", a)
	}
}

// kill9Child handles the event and SIGKILLs itself right after the SMTP
// server accepted the message.
func kill9Child() {
	var cfg map[string]string
	if err := json.Unmarshal([]byte(os.Getenv(crashChildEnv)), &cfg); err != nil {
		panic(err)
	}
	var e event.Event
	if err := json.Unmarshal([]byte(cfg["EVENT"]), &e); err != nil {
		panic(err)
	}
	ctx := context.Background()
	n := New()
	n.Log = slog.New(slog.DiscardHandler)
	n.lease = 2 * time.Second
	if err := n.Start(ctx, cfg); err != nil {
		panic(err)
	}
	n.afterAccept = func() error {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
	_, err := n.Handle(ctx, e)
	panic(err) // not reached
}
