package renewal_test

import (
	"context"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	renewalfn "github.com/overture-music/overture/functions/renewal"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/function/functiontest"
	"github.com/overture-music/overture/internal/saga"
	"github.com/overture-music/overture/internal/saga/sagatest"
	"github.com/overture-music/overture/internal/subscription"
	"github.com/overture-music/overture/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// A ping runs the sweep; only in choreography does it fail an unpaid
// purchase (the orchestrator times out its own sagas).
func TestPingSweepsPendingOnlyInChoreography(t *testing.T) {
	t.Parallel()
	sagatest.EachMode(t, func(t *testing.T, mode saga.Mode, cfg map[string]string) {
		want := map[saga.Mode]string{saga.Choreography: subscription.StatusFailed, saga.Orchestration: subscription.StatusPending}[mode]
		ctx := context.Background()
		f := renewalfn.New()
		cfg["SUBSCRIPTION_PENDING_TIMEOUT"] = "1ms"
		functiontest.Start(t, f, cfg)
		x, err := f.Store.Create(ctx, "u", "monthly", "")
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
		ping := event.New()
		ping.SetID("tick-1")
		ping.SetType(eventtype.Ping)
		ping.SetSource("/apis/v1/namespaces/overture/pingsources/renewal-ping")
		if _, err := f.Handle(ctx, ping); err != nil {
			t.Fatal(err)
		}
		got, err := f.Store.Get(ctx, x.ID)
		if err != nil || got.Status != want {
			t.Fatalf("after the ping: %v %v, want %s", got.Status, err, want)
		}
	})
}
