package stats_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/overture-music/overture/internal/stats"
	"github.com/overture-music/overture/internal/stats/statstest"
)

// Copies of a listen that reach the table anyway (two writer processes
// racing on one ClickHouse server, each finding the id new) are counted
// (and scanned) once by every read: the replacing key collapses them (FINAL), before and
// after the background merge.
func TestClickHouseCollapsesCopies(t *testing.T) {
	ctx := context.Background()
	s := statstest.OpenCH(t)
	rows := statstest.Fixture()
	_, err := s.Write(ctx, rows)
	require.NoError(t, err)
	// The same rows inserted again behind Write's back, twice: as a racing
	// writer would, with and without a deduplication token.
	for i := range 2 {
		_, err = s.Exec(ctx, fmt.Sprintf(`INSERT INTO %[1]s.stats_listen SELECT * FROM %[1]s.stats_listen WHERE user_id = 'ana'
			SETTINGS insert_deduplication_token = 'copy-%[2]d'`, s.Database(), i))
		require.NoError(t, err)
	}
	raw := func() int {
		out, err := s.Exec(ctx, "SELECT count() AS n FROM "+s.Database()+".stats_listen")
		require.NoError(t, err)
		var r struct{ N int }
		require.NoError(t, json.Unmarshal(out, &r))
		return r.N
	}
	require.Equal(t, 13+2*8, raw(), "the copies are stored (ana has 8 listens)")
	check := func() {
		recent, err := s.Recent(ctx, "ana", 100)
		require.NoError(t, err)
		require.Len(t, recent, 8)
		counts, err := s.StreamCounts(ctx, []string{"t1", "t3"})
		require.NoError(t, err)
		require.Equal(t, map[string]int64{"t1": 4, "t3": 5}, counts)
		a, err := s.Audience(ctx, stats.Filter{}, statstest.Now.AddDate(-5, 0, 0), statstest.Now.AddDate(0, 0, 1))
		require.NoError(t, err)
		require.Equal(t, int64(13), a.Plays)
		// Scan, on one page and across pages of 1, 4 and 11 listens (11
		// ends between a1 and a1b, in the same second): each listen once.
		for _, page := range []int{0, 1, 4, 11} {
			s.Page = page
			require.Equal(t, statstest.ScanOrder, statstest.Scanned(t, s, statstest.Now.AddDate(-5, 0, 0), statstest.Now.AddDate(0, 0, 1)), "page %d", page)
		}
		s.Page = 0
	}
	check()
	// A redelivery through Write still finds them all.
	n, err := s.Write(ctx, rows)
	require.NoError(t, err)
	require.Zero(t, n)
	_, err = s.Exec(ctx, "OPTIMIZE TABLE "+s.Database()+".stats_listen FINAL")
	require.NoError(t, err)
	require.Equal(t, 13, raw(), "merged: one row per listen")
	check()
}

// The store's INSERT retried (its answer lost) with the same deduplication
// token adds nothing: the block is recognised.
func TestClickHouseRetriedInsertIsDeduplicated(t *testing.T) {
	ctx := context.Background()
	s := statstest.OpenCH(t)
	insert := stats.CHInsert(s.Database(), "batch-1",
		`{"listen_id":"x1","user_id":"u","listened_at":1764583200,"artist_name":"A","track_name":"T","stream":true,"scrobble":true}`+"\n")
	for range 3 {
		_, err := s.Exec(ctx, insert)
		require.NoError(t, err)
	}
	out, err := s.Exec(ctx, "SELECT count() AS n FROM "+s.Database()+".stats_listen")
	require.NoError(t, err)
	require.JSONEq(t, `{"n":1}`, string(out), "one part, not three: the window (non_replicated_deduplication_window) is on")
}

// Every string a listen can carry reaches ClickHouse intact through the
// store's literal quoting (quotes, backslashes, NUL, newlines, any bytes).
func FuzzLiteral(f *testing.F) {
	for _, s := range []string{"", "plain", "O'Brien", `back\slash`, `\'`, "nul\x00byte", "new\nline", "Björk", "\xff\xfe", "'; DROP TABLE x; --"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		x, _ := statstest.Embedded(t)
		out, err := x.Exec(context.Background(), "SELECT hex("+stats.Lit(s)+") AS h")
		require.NoError(t, err)
		var r struct{ H string }
		require.NoError(t, json.Unmarshal(out, &r))
		require.Equal(t, hex.EncodeToString([]byte(s)), strings.ToLower(r.H))
	})
}
