package listens

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// MaxTokens is how many live listen tokens one listener may hold.
const MaxTokens = 20

// ErrNoToken: the token is unknown or revoked.
var ErrNoToken = errors.New("listens: unknown or revoked listen token")

// ErrTooManyTokens: the listener holds MaxTokens live tokens already.
var ErrTooManyTokens = errors.New("listens: too many listen tokens")

// TokenInfo describes a listen token (never the token itself).
type TokenInfo struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// Tokens stores listen tokens hashed in table listens_token.
type Tokens struct{ Pool *pgxpool.Pool }

func hashToken(tok string) []byte {
	h := sha256.Sum256([]byte(tok))
	return h[:]
}

// Create makes a token for user and returns it with its description; the
// token is a random UUID, the shape ListenBrainz clients expect.
func (t Tokens) Create(ctx context.Context, user, name string) (string, TokenInfo, error) {
	tok := uuid.NewString()
	info := TokenInfo{ID: uuid.NewString(), Name: name}
	err := pgx.BeginFunc(ctx, t.Pool, func(tx pgx.Tx) error {
		// One creation at a time per user, so the limit holds under races.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('listens_token:' || $1))`, user); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM listens_token WHERE user_id = $1 AND revoked_at IS NULL`, user).Scan(&n); err != nil {
			return err
		}
		if n >= MaxTokens {
			return ErrTooManyTokens
		}
		return tx.QueryRow(ctx, `INSERT INTO listens_token (id, user_id, name, hash) VALUES ($1, $2, $3, $4) RETURNING created_at`,
			info.ID, user, name, hashToken(tok)).Scan(&info.CreatedAt)
	})
	if err != nil {
		return "", info, fmt.Errorf("create listen token: %w", err)
	}
	return tok, info, nil
}

// List returns user's tokens, newest first, revoked ones included.
func (t Tokens) List(ctx context.Context, user string) ([]TokenInfo, error) {
	rows, err := t.Pool.Query(ctx, `SELECT id::text, name, created_at, revoked_at FROM listens_token WHERE user_id = $1 ORDER BY created_at DESC, id`, user)
	if err != nil {
		return nil, fmt.Errorf("list listen tokens: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (TokenInfo, error) {
		var i TokenInfo
		err := r.Scan(&i.ID, &i.Name, &i.CreatedAt, &i.RevokedAt)
		return i, err
	})
	if err != nil {
		return nil, fmt.Errorf("list listen tokens: %w", err)
	}
	return out, nil
}

// Revoke revokes user's token id; ErrNoToken if user has no such live token.
func (t Tokens) Revoke(ctx context.Context, user, id string) error {
	if _, err := uuid.Parse(id); err != nil {
		return ErrNoToken
	}
	tag, err := t.Pool.Exec(ctx, `UPDATE listens_token SET revoked_at = now() WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL`, id, user)
	if err != nil {
		return fmt.Errorf("revoke listen token: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNoToken
	}
	return nil
}

// User returns the user a live token belongs to, or ErrNoToken.
func (t Tokens) User(ctx context.Context, tok string) (string, error) {
	var user string
	err := t.Pool.QueryRow(ctx, `SELECT user_id FROM listens_token WHERE hash = $1 AND revoked_at IS NULL`, hashToken(tok)).Scan(&user)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", ErrNoToken
	}
	if err != nil {
		return "", fmt.Errorf("look up listen token: %w", err)
	}
	return user, nil
}
