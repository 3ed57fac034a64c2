package notification

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Audit compares the function's ledger with what reached the mail store, for
// fault-injection tests that must show "every email sent exactly once".
type Audit struct {
	// Sent and Pending count ledger rows by state. After the broker has
	// drained, Pending should be 0.
	Sent, Pending int
	// Stored counts messages in the mail store carrying one of our
	// Message-IDs (domain MessageIDDomain).
	Stored int
	// Duplicates lists Message-IDs stored more than once; Missing, rows marked
	// sent whose message is not stored; Unknown, stored messages of ours with
	// no ledger row. All three are empty when every email went out exactly
	// once.
	Duplicates, Missing, Unknown []string
}

// ExactlyOnce reports whether the audit found nothing wrong and nothing
// still pending.
func (a Audit) ExactlyOnce() bool {
	return a.Pending == 0 && len(a.Duplicates) == 0 && len(a.Missing) == 0 && len(a.Unknown) == 0
}

// String is a one-line summary for test output.
func (a Audit) String() string {
	return fmt.Sprintf("emails: %d sent, %d pending, %d stored, %d duplicated, %d missing, %d unknown",
		a.Sent, a.Pending, a.Stored, len(a.Duplicates), len(a.Missing), len(a.Unknown))
}

// AuditDelivery reads the ledger in the database behind pool (the
// function's DATABASE_URL) and the mailpit at apiURL.
func AuditDelivery(ctx context.Context, pool *pgxpool.Pool, apiURL string) (Audit, error) {
	var a Audit
	counts, err := CountByMessageID(ctx, apiURL)
	if err != nil {
		return a, err
	}
	rows, err := pool.Query(ctx, `SELECT message_id, state FROM notification_email`)
	if err != nil {
		return a, fmt.Errorf("read email ledger: %w", err)
	}
	defer rows.Close()
	ledger := map[string]bool{}
	for rows.Next() {
		var id, state string
		if err := rows.Scan(&id, &state); err != nil {
			return a, fmt.Errorf("read email ledger: %w", err)
		}
		ledger[id] = true
		if state == "sent" {
			a.Sent++
			if counts[id] == 0 {
				a.Missing = append(a.Missing, id)
			}
		} else {
			a.Pending++
		}
	}
	if err := rows.Err(); err != nil {
		return a, fmt.Errorf("read email ledger: %w", err)
	}
	suffix := "@" + MessageIDDomain
	for id, n := range counts {
		if len(id) <= len(suffix) || id[len(id)-len(suffix):] != suffix {
			continue // not ours
		}
		a.Stored += n
		if n > 1 {
			a.Duplicates = append(a.Duplicates, id)
		}
		if !ledger[id] {
			a.Unknown = append(a.Unknown, id)
		}
	}
	slices.Sort(a.Duplicates)
	slices.Sort(a.Missing)
	slices.Sort(a.Unknown)
	return a, nil
}
