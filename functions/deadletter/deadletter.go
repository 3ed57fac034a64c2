// Package deadletter is the dead-letter sink function (`dead-letter`): the
// broker sends it every event whose last retry failed, carrying the Knative
// knativeerrordest/code/data extensions. It keeps them in PostgreSQL so an
// operator can see what failed and why (`overture events dlq list`) and put
// them back into the broker once the cause is fixed (`overture events dlq
// redrive`). Dead letters are not routed anywhere else: a dead letter that
// itself failed would loop.
package deadletter

import (
	"context"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/internal/config"
	"github.com/overture-music/overture/internal/function"
	"github.com/overture-music/overture/internal/lifecycle"
	"github.com/overture-music/overture/internal/postgres"
)

// Name is the function's name (func.yaml, Knative Service, trigger refs).
const Name = "dead-letter"

// Knative's dead-letter extensions.
const (
	ExtErrorDest = "knativeerrordest"
	ExtErrorCode = "knativeerrorcode"
	ExtErrorData = "knativeerrordata"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate creates the dead_letter table (owner "deadletter").
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return postgres.MigrateOwner(ctx, pool, "deadletter", migrations)
}

// Function is the dead-letter sink.
type Function struct {
	lifecycle.Base
	pool *postgres.Pool
}

// New returns the function; Start connects it.
func New() *Function { return &Function{} }

// Config is the function's settings.
type Config struct {
	DatabaseURL string // DATABASE_URL
}

// Read fills c from r; every problem is recorded on r.
func (c *Config) Read(r *config.Reader) { c.DatabaseURL = r.String(postgres.KeyDatabaseURL) }

// ConfigKeys lists the settings the function reads.
func (f *Function) ConfigKeys() []config.Key { return config.KeysOf(new(Config).Read) }

// Start opens DATABASE_URL and migrates.
func (f *Function) Start(ctx context.Context, cfg map[string]string) error {
	r := config.NewReader(cfg)
	var c Config
	c.Read(r)
	if err := r.Err(); err != nil {
		return fmt.Errorf("dead-letter: %w", err)
	}
	pool, err := f.OpenPool(ctx, c.DatabaseURL, Migrate)
	if err != nil {
		return fmt.Errorf("dead-letter: %w", err)
	}
	f.pool = pool
	return nil
}

// Handle stores e. It never replies: a dead letter goes nowhere else.
func (f *Function) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	if f.pool == nil {
		return nil, errors.New("dead-letter: not started")
	}
	return nil, Store(ctx, f.pool.Pool, e)
}

// Store records a dead letter idempotently by (source, id, knativeerrordest).
func Store(ctx context.Context, pool *pgxpool.Pool, e event.Event) error {
	body, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("dead-letter: encode %s: %w", e.ID(), err)
	}
	ext := e.Extensions()
	dest, code := str(ext[ExtErrorDest]), str(ext[ExtErrorCode])
	data := decodeErrorData(str(ext[ExtErrorData]))
	_, err = pool.Exec(ctx, `
INSERT INTO dead_letter (event_source, event_id, error_dest, event_type, error_code, error_data, event)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (event_source, event_id, error_dest) DO UPDATE
   SET times = dead_letter.times + 1, redriven_at = NULL, received_at = now(),
       error_code = EXCLUDED.error_code, error_data = EXCLUDED.error_data, event = EXCLUDED.event
 WHERE dead_letter.redriven_at IS NOT NULL`,
		e.Source(), e.ID(), dest, e.Type(), code, data, body)
	if err != nil {
		return fmt.Errorf("dead-letter: store %s/%s: %w", e.Source(), e.ID(), err)
	}
	return nil
}

func str(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

// decodeErrorData turns knativeerrordata (base64 of a response body or error
// text) into printable text; what is not base64 is kept as it came.
func decodeErrorData(s string) string {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		b = []byte(s)
	}
	return strings.ReplaceAll(strings.ToValidUTF8(string(b), "\uFFFD"), "\x00", "")
}

// Entry is one pending dead letter.
type Entry struct {
	ID         int64
	ReceivedAt time.Time
	Times      int
	Event      event.Event
	ErrorDest  string
	ErrorCode  string
	ErrorData  string // decoded
}

// List returns up to limit dead letters not yet re-driven, oldest first.
func List(ctx context.Context, pool *pgxpool.Pool, limit int) ([]Entry, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := pool.Query(ctx, `
SELECT id, received_at, times, event, error_dest, error_code, error_data
FROM dead_letter WHERE redriven_at IS NULL ORDER BY id LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("dead-letter: list: %w", err)
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		var en Entry
		var body []byte
		if err := rows.Scan(&en.ID, &en.ReceivedAt, &en.Times, &body, &en.ErrorDest, &en.ErrorCode, &en.ErrorData); err != nil {
			return nil, fmt.Errorf("dead-letter: list: %w", err)
		}
		if err := json.Unmarshal(body, &en.Event); err != nil {
			return nil, fmt.Errorf("dead-letter: entry %d: %w", en.ID, err)
		}
		out = append(out, en)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("dead-letter: list: %w", err)
	}
	return out, nil
}

// Redrive publishes the original events of the given pending dead letters
// (every pending one when ids is nil) without the knativeerror* extensions,
// and marks them re-driven. It returns how many it re-drove; ids that are
// unknown or already re-driven are skipped. The events go back through the
// broker, so every trigger that wants them sees them again (consumers are
// idempotent).
func Redrive(ctx context.Context, pool *pgxpool.Pool, pub function.Publisher, ids []int64) (int, error) {
	if ids != nil && len(ids) == 0 {
		return 0, nil
	}
	var n int
	err := postgres.InTx(ctx, pool, func(tx pgx.Tx) error {
		q := `SELECT id, event FROM dead_letter WHERE redriven_at IS NULL AND id = ANY($1) ORDER BY id FOR UPDATE`
		args := []any{ids}
		if ids == nil {
			q = `SELECT id, event FROM dead_letter WHERE redriven_at IS NULL ORDER BY id FOR UPDATE`
			args = nil
		}
		rows, err := tx.Query(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("select dead letters: %w", err)
		}
		var done []int64
		var events []event.Event
		for rows.Next() {
			var id int64
			var body []byte
			if err := rows.Scan(&id, &body); err != nil {
				rows.Close()
				return fmt.Errorf("read dead letter: %w", err)
			}
			var e event.Event
			if err := json.Unmarshal(body, &e); err != nil {
				rows.Close()
				return fmt.Errorf("dead letter %d: %w", id, err)
			}
			for _, k := range []string{ExtErrorDest, ExtErrorCode, ExtErrorData} {
				e.SetExtension(k, nil) // nil removes it
			}
			done = append(done, id)
			events = append(events, e)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read dead letters: %w", err)
		}
		if len(events) == 0 {
			return nil
		}
		// Publish first, then mark: a crash in between re-drives again
		// (at least once), never loses one.
		const chunk = 200
		for i := 0; i < len(events); i += chunk {
			if err := pub.Publish(ctx, events[i:min(i+chunk, len(events))]...); err != nil {
				return fmt.Errorf("publish %d re-driven events: %w", len(events), err)
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE dead_letter SET redriven_at = now() WHERE id = ANY($1)`, done); err != nil {
			return fmt.Errorf("mark re-driven: %w", err)
		}
		n = len(done)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("dead-letter: redrive: %w", err)
	}
	return n, nil
}
