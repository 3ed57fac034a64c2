package renewal_test

import (
	"context"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jonboulle/clockwork"

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
// purchase (the orchestrator times out its own sagas), and only once its
// deadline has come: the pending timeout passes on a fake clock.
func TestPingSweepsPendingOnlyInChoreography(t *testing.T) {
	t.Parallel()
	sagatest.EachMode(t, func(t *testing.T, mode saga.Mode, cfg map[string]string) {
		want := map[saga.Mode]string{saga.Choreography: subscription.StatusFailed, saga.Orchestration: subscription.StatusPending}[mode]
		ctx := context.Background()
		f := renewalfn.New()
		// Whole seconds: PostgreSQL keeps microseconds, so the deadline
		// stored is exactly the one computed.
		clock := clockwork.NewFakeClockAt(time.Now().Truncate(time.Second))
		f.Clock = clock
		cfg["SUBSCRIPTION_PENDING_TIMEOUT"] = "1h"
		functiontest.Start(t, f, cfg)
		x, err := f.Store.Create(ctx, "u", "monthly", "")
		if err != nil {
			t.Fatal(err)
		}
		tick := func(id string) string {
			t.Helper()
			ping := event.New()
			ping.SetID(id)
			ping.SetType(eventtype.Ping)
			ping.SetSource("/apis/v1/namespaces/overture/pingsources/renewal-ping")
			if _, err := f.Handle(ctx, ping); err != nil {
				t.Fatal(err)
			}
			got, err := f.Store.Get(ctx, x.ID)
			if err != nil {
				t.Fatal(err)
			}
			return got.Status
		}
		clock.Advance(time.Hour - time.Millisecond) // the deadline's last millisecond
		if got := tick("tick-1"); got != subscription.StatusPending {
			t.Fatalf("before the deadline the ping left it %s, want %s", got, subscription.StatusPending)
		}
		clock.Advance(time.Millisecond)
		if got := tick("tick-2"); got != want {
			t.Fatalf("after the deadline: %s, want %s", got, want)
		}
	})
}
