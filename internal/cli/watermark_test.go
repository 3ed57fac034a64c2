package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/internal/search/applied"
	"github.com/overture-music/overture/internal/testenv"
)

// TestWatermarkExplains: `overture watermark` says why ?after= reads wait.
func TestWatermarkExplains(t *testing.T) {
	ctx := context.Background()
	dbURL := testenv.Postgres(t)
	env := func(k string) string {
		if k == "DATABASE_URL" {
			return dbURL
		}
		return ""
	}
	var out bytes.Buffer
	if err := watermark(ctx, nil, &out, &out, env); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "no spans recorded") {
		t.Fatalf("before CDC reported anything:\n%s", out.String())
	}
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	// A snapshot, then a span whose one transaction has 2 changes, 1 applied.
	for _, p := range []applied.Progress{{To: 100, Snapshot: true}, {From: 100, To: 200, Txns: []applied.Txn{{CommitLSN: 150, Changes: 2}}}} {
		if err := applied.RecordProgress(ctx, pool, p); err != nil {
			t.Fatal(err)
		}
	}
	// apply records a change of transaction 150 as applied, then checks
	// what the command prints.
	apply := func(index int, want ...string) {
		t.Helper()
		if err := applied.RecordApplied(ctx, pool, []applied.Change{{CommitLSN: 150, Index: index}}); err != nil {
			t.Fatal(err)
		}
		if _, err := applied.Advance(ctx, pool); err != nil {
			t.Fatal(err)
		}
		out.Reset()
		if err := watermark(ctx, nil, &out, &out, env); err != nil {
			t.Fatal(err)
		}
		for _, w := range want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("output lacks %q:\n%s", w, out.String())
			}
		}
	}
	apply(0, "watermark 100 (chained true)", "span (100, 200]", "transaction 150: 1 of 2 changes applied")
	// Once everything reported is applied, it says it is up to date.
	apply(1, "watermark 200 (chained true)", "up to date")
	if err := watermark(ctx, []string{"extra"}, &out, &out, env); err == nil {
		t.Error("an argument was accepted")
	}
}
