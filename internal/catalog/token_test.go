package catalog_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/stretchr/testify/require"

	"github.com/overture-music/overture/cdc"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/lsn"
	"github.com/overture-music/overture/internal/testenv"
)

type sink struct {
	mu     sync.Mutex
	events []event.Event
}

func (s *sink) Publish(_ context.Context, events ...event.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, events...)
	return nil
}

// find returns the event of type typ whose partition key ends in id.
func (s *sink) find(typ, id string) (event.Event, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.events {
		if k, _ := e.Extensions()["partitionkey"].(string); e.Type() == typ && strings.HasSuffix(k, ":"+id) {
			return e, true
		}
	}
	return event.Event{}, false
}

// TestConsistencyTokenIsTheCommitLSN writes through the admin API with CDC
// running and compares the answered X-Consistency-Token with the commitlsn CDC
// stamps on the write's events: on a database with no other writers they are
// equal, so a reader waiting for "applied >= token" is released by exactly this
// write, and by nothing that committed before it. Not parallel: the package's
// other tests share the server, and their WAL would come between. Background
// WAL (a checkpoint's records) can still do that, so one of three writes must
// match exactly; none may answer a token before its own commit.
func TestConsistencyTokenIsTheCommitLSN(t *testing.T) {
	b := setup(t)
	rec := &sink{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var db string
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT current_database()`).Scan(&db))
	go func() {
		done <- cdc.Run(ctx, cdc.Config{DatabaseURL: b.dbURL, Slot: "tok_" + db, Publication: "tok_" + db, Publisher: rec, PruneInterval: time.Hour})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Error(err)
		}
	})
	testenv.WaitFor(t, 2*time.Minute, "CDC to start (its slot recorded)", func() bool {
		var n int
		return b.pool.QueryRow(ctx, `SELECT count(*) FROM cdc_slot`).Scan(&n) == nil && n == 1
	})

	exact := 0
	for i := range 3 {
		r := b.admin(t, "POST", "/v1/admin/artists", map[string]any{"name": fmt.Sprintf("ДДТ %d", i)})
		require.Equal(t, http.StatusCreated, r.status, r.raw)
		token := requireToken(t, r)
		id := r.body["id"].(string)
		var e event.Event
		testenv.WaitFor(t, 2*time.Minute, "the ArtistCreated event of "+id, func() bool {
			var ok bool
			e, ok = rec.find(eventtype.ArtistCreated, id)
			return ok
		})
		commit, err := lsn.ParseToken(e.Extensions()["commitlsn"].(string))
		require.NoError(t, err)
		require.GreaterOrEqual(t, token, commit, "the token is at or after the write's commit")
		if token == commit {
			exact++
		}
	}
	require.Positive(t, exact, "on a quiet database the token is the commit LSN")
}
