package opsapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"

	"github.com/overture-music/overture/functions/deadletter"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/outbox"
	"github.com/overture-music/overture/internal/postgres"
	"github.com/overture-music/overture/internal/problem"
)

// Paging and selection limits.
const (
	DefaultLimit = 50
	MaxLimit     = 200
	MaxRedrive   = 200 // ids in one POST /v1/admin/dead-letters/redrive
	maxErrorText = 300 // characters of the error in a list entry
)

// DeadLetter is one entry of GET /v1/admin/dead-letters. A dead letter
// records the subscriber that failed (knativeerrordest), not the Trigger;
// Subscriber is its service name (or the URI of a uri subscriber).
type DeadLetter struct {
	ID          int64      `json:"id"`
	Type        string     `json:"type"`
	Source      string     `json:"source"`
	EventID     string     `json:"event_id"`
	Subscriber  string     `json:"subscriber"`
	Destination string     `json:"destination"`
	ErrorCode   string     `json:"error_code"`
	Error       string     `json:"error"`
	Times       int        `json:"times"`
	ReceivedAt  time.Time  `json:"received_at"`
	RedrivenAt  *time.Time `json:"redriven_at,omitempty"`
	Redrivable  bool       `json:"redrivable"`
}

// Detail is GET /v1/admin/dead-letters/{id}: the entry with the whole error
// text and the event as the sink received it (structured CloudEvents JSON).
type Detail struct {
	DeadLetter
	Event json.RawMessage `json:"event"`
}

// Page is GET /v1/admin/dead-letters.
type Page struct {
	DeadLetters []DeadLetter `json:"dead_letters"`
	// Next is the cursor of the following page (pass it as before=).
	Next string `json:"next,omitempty"`
	// Types and Subscribers are the distinct values among pending dead
	// letters, for the filters.
	Types       []string `json:"types"`
	Subscribers []string `json:"subscribers"`
}

// RedriveResult is one id's outcome of a re-drive.
type RedriveResult struct {
	ID     int64  `json:"id"`
	Status string `json:"status"` // redriven | already-redriven | not-found | not-redrivable
	Detail string `json:"detail,omitempty"`
}

// Outcomes of a re-drive.
const (
	StatusRedriven        = "redriven"
	StatusAlreadyRedriven = "already-redriven"
	StatusNotFound        = "not-found"
	StatusNotRedrivable   = "not-redrivable"
)

// subscriberSQL derives the subscriber's service name from error_dest
// (http://<service>.<namespace>.svc.cluster.local), or keeps a uri
// subscriber's URL.
const subscriberSQL = `CASE WHEN error_dest ~ '^https?://[^./]+\.[^./]+\.svc\.cluster\.local/?$'
  THEN split_part(split_part(error_dest, '://', 2), '.', 1) ELSE error_dest END`

const columns = `id, event_type, event_source, event_id, ` + subscriberSQL + `, error_dest, error_code, error_data, times, received_at, redriven_at`

func scanEntry(row pgx.Row, extra ...any) (DeadLetter, error) {
	var d DeadLetter
	err := row.Scan(append([]any{&d.ID, &d.Type, &d.Source, &d.EventID, &d.Subscriber, &d.Destination, &d.ErrorCode,
		&d.Error, &d.Times, &d.ReceivedAt, &d.RedrivenAt}, extra...)...)
	d.Redrivable = redrivable(d.Type) == ""
	return d, err
}

// redrivable says why a type cannot be re-driven through the outbox ("" if
// it can).
func redrivable(typ string) string {
	spec, ok := eventtype.Lookup(typ)
	switch {
	case !ok:
		return "the event catalog does not know type " + typ + "; re-drive it with `overture events dlq redrive` and its producer's token"
	case !spec.Outbox:
		return typ + " is published directly by " + strings.Join(spec.Producers, ", ") +
			", not through the outbox; re-drive it with `overture events dlq redrive` and that producer's token"
	}
	return ""
}

func positive(name, v string, max int64) (int64, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 || n > max {
		return 0, problem.BadRequest(fmt.Sprintf("%s: %q is not a whole number from 1 to %d", name, v, max))
	}
	return n, nil
}

// list is GET /v1/admin/dead-letters?type=&subscriber=&limit=&before=:
// pending dead letters, newest first.
func (s *Service) list(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := problem.Params(q, "type", "subscriber", "limit", "before"); err != nil {
		return err
	}
	typ, err := problem.Param(q, "type")
	if err != nil {
		return err
	}
	sub, err := problem.Param(q, "subscriber")
	if err != nil {
		return err
	}
	limit := int64(DefaultLimit)
	if v, err := problem.Param(q, "limit"); err != nil {
		return err
	} else if v != "" {
		if limit, err = positive("limit", v, MaxLimit); err != nil {
			return err
		}
	}
	var before int64
	if v, err := problem.Param(q, "before"); err != nil {
		return err
	} else if v != "" {
		if before, err = positive("before", v, 1<<62); err != nil {
			return err
		}
	}
	ctx := r.Context()
	rows, err := s.Pool.Query(ctx, `SELECT `+columns+` FROM dead_letter
WHERE redriven_at IS NULL AND ($1 = '' OR event_type = $1) AND ($2 = '' OR error_dest = $2 OR `+subscriberSQL+` = $2)
  AND ($3 = 0 OR id < $3)
ORDER BY id DESC LIMIT $4`, typ, sub, before, limit+1)
	if err != nil {
		return fmt.Errorf("list dead letters: %w", err)
	}
	page := Page{DeadLetters: []DeadLetter{}}
	for rows.Next() {
		d, err := scanEntry(rows)
		if err != nil {
			rows.Close()
			return fmt.Errorf("read dead letter: %w", err)
		}
		if r := []rune(d.Error); len(r) > maxErrorText {
			d.Error = string(r[:maxErrorText-1]) + "…"
		}
		page.DeadLetters = append(page.DeadLetters, d)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("list dead letters: %w", err)
	}
	if int64(len(page.DeadLetters)) > limit {
		page.DeadLetters = page.DeadLetters[:limit]
		page.Next = strconv.FormatInt(page.DeadLetters[limit-1].ID, 10)
	}
	if page.Types, err = s.distinct(ctx, "event_type"); err != nil {
		return err
	}
	if page.Subscribers, err = s.distinct(ctx, subscriberSQL); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

func (s *Service) distinct(ctx context.Context, expr string) ([]string, error) {
	rows, err := s.Pool.Query(ctx, `SELECT DISTINCT `+expr+` AS v FROM dead_letter WHERE redriven_at IS NULL ORDER BY v LIMIT 200`)
	if err != nil {
		return nil, fmt.Errorf("dead-letter filters: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("dead-letter filters: %w", err)
	}
	return append([]string{}, out...), nil
}

func pathID(r *http.Request) (int64, error) {
	v := r.PathValue("id")
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id <= 0 {
		return 0, problem.BadRequest(fmt.Sprintf("%q is not a dead-letter id", v))
	}
	return id, nil
}

func notFound(id int64) *problem.Problem {
	return problem.New(http.StatusNotFound, "dead-letter-not-found", fmt.Sprintf("no dead letter %d", id))
}

// show is GET /v1/admin/dead-letters/{id} (pending or re-driven).
func (s *Service) show(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	var d Detail
	var body []byte
	d.DeadLetter, err = scanEntry(s.Pool.QueryRow(r.Context(), `SELECT `+columns+`, event FROM dead_letter WHERE id = $1`, id), &body)
	if errors.Is(err, pgx.ErrNoRows) {
		return notFound(id)
	}
	if err != nil {
		return fmt.Errorf("read dead letter %d: %w", id, err)
	}
	d.Event = body
	writeJSON(w, http.StatusOK, d)
	return nil
}

// discard is DELETE /v1/admin/dead-letters/{id}: the dead letter is
// forgotten (if the same event fails again it is stored anew).
func (s *Service) discard(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	tag, err := s.Pool.Exec(r.Context(), `DELETE FROM dead_letter WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("discard dead letter %d: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return notFound(id)
	}
	s.Log.InfoContext(r.Context(), "dead letter discarded", "id", id)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// redriveOne is POST /v1/admin/dead-letters/{id}/redrive: 200 when this call
// re-drove it; 409 already-redriven or not-redrivable; 404.
func (s *Service) redriveOne(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	res, err := s.Redrive(r.Context(), []int64{id})
	if err != nil {
		return err
	}
	switch res[0].Status {
	case StatusNotFound:
		return notFound(id)
	case StatusAlreadyRedriven, StatusNotRedrivable:
		return problem.New(http.StatusConflict, res[0].Status, res[0].Detail)
	}
	writeJSON(w, http.StatusOK, res[0])
	return nil
}

// redriveMany is POST /v1/admin/dead-letters/redrive {"ids": [...]}: each
// id's outcome, in the order given.
func (s *Service) redriveMany(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		IDs []int64 `json:"ids"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return problem.BadRequest("the body must be {\"ids\": [dead-letter ids]}: " + err.Error())
	}
	switch {
	case len(in.IDs) == 0:
		return problem.BadRequest("ids is empty: give the dead letters to re-drive")
	case len(in.IDs) > MaxRedrive:
		return problem.BadRequest(fmt.Sprintf("%d ids; at most %d per request", len(in.IDs), MaxRedrive))
	}
	for _, id := range in.IDs {
		if id <= 0 {
			return problem.BadRequest(fmt.Sprintf("%d is not a dead-letter id", id))
		}
	}
	res, err := s.Redrive(r.Context(), in.IDs)
	if err != nil {
		return err
	}
	n := 0
	for _, x := range res {
		if x.Status == StatusRedriven {
			n++
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"redriven": n, "results": res})
	return nil
}

// Redrive re-drives the given dead letters through the outbox (see the
// package doc) and marks them re-driven, in one transaction; it returns each
// id's outcome in the order given (a repeated id is re-driven once).
func (s *Service) Redrive(ctx context.Context, ids []int64) ([]RedriveResult, error) {
	out := make([]RedriveResult, len(ids))
	err := postgres.InTx(ctx, s.Pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id, event_type, redriven_at IS NOT NULL, event FROM dead_letter WHERE id = ANY($1) ORDER BY id FOR UPDATE`, ids)
		if err != nil {
			return fmt.Errorf("select dead letters: %w", err)
		}
		type found struct {
			typ  string
			done bool
			body []byte
		}
		byID := map[int64]found{}
		for rows.Next() {
			var id int64
			var f found
			if err := rows.Scan(&id, &f.typ, &f.done, &f.body); err != nil {
				rows.Close()
				return fmt.Errorf("read dead letter: %w", err)
			}
			byID[id] = f
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read dead letters: %w", err)
		}
		var events []event.Event
		var marked []int64
		for i, id := range ids {
			out[i] = RedriveResult{ID: id}
			f, ok := byID[id]
			switch why := redrivable(f.typ); {
			case !ok:
				out[i].Status, out[i].Detail = StatusNotFound, fmt.Sprintf("no dead letter %d", id)
			case f.done || slices.Contains(marked, id):
				out[i].Status, out[i].Detail = StatusAlreadyRedriven, fmt.Sprintf("dead letter %d was already re-driven", id)
			case why != "":
				out[i].Status, out[i].Detail = StatusNotRedrivable, why
			default:
				var e event.Event
				if err := json.Unmarshal(f.body, &e); err != nil {
					return fmt.Errorf("dead letter %d: %w", id, err)
				}
				for _, k := range []string{deadletter.ExtErrorDest, deadletter.ExtErrorCode, deadletter.ExtErrorData} {
					e.SetExtension(k, nil) // nil removes it
				}
				events = append(events, e)
				marked = append(marked, id)
				out[i].Status = StatusRedriven
			}
		}
		if len(events) == 0 {
			return nil
		}
		if err := outbox.Write(ctx, tx, events...); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE dead_letter SET redriven_at = now() WHERE id = ANY($1)`, marked); err != nil {
			return fmt.Errorf("mark re-driven: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("re-drive: %w", err)
	}
	for _, x := range out {
		if x.Status == StatusRedriven {
			s.Log.InfoContext(ctx, "dead letter re-driven through the outbox", "id", x.ID)
		}
	}
	return out, nil
}
