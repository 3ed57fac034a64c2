// Package outboxtest reads what a test's code wrote to the transactional
// outbox, so tests can assert which events a state change announced and how
// often, without knowing the outbox table's layout.
package outboxtest

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Types counts the outbox rows by event type.
func Types(t testing.TB, pool *pgxpool.Pool) map[string]int {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT event_type, count(*) FROM outbox GROUP BY 1`)
	if err != nil {
		t.Fatalf("count outbox rows: %v", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var typ string
		var n int
		if err := rows.Scan(&typ, &n); err != nil {
			t.Fatalf("count outbox rows: %v", err)
		}
		out[typ] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("count outbox rows: %v", err)
	}
	return out
}

// DistinctIDs counts the different event ids among the outbox rows of type
// typ: an event written twice under one id counts once.
func DistinctIDs(t testing.TB, pool *pgxpool.Pool, typ string) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(DISTINCT event_id) FROM outbox WHERE event_type = $1`, typ).Scan(&n); err != nil {
		t.Fatalf("count outbox event ids: %v", err)
	}
	return n
}
