package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/internal/postgres"
	"github.com/overture-music/overture/internal/token"
)

// Account is a row of auth_account joined with its entitlement.
type Account struct {
	ID           string
	Email        string
	PasswordHash *string
	Locale       string
	Roles        []string
	ConfirmedAt  *time.Time
	Premium      bool
	PremiumUntil *time.Time
	EntVersion   int64
}

// Errors of account operations.
var (
	ErrEmailTaken  = errors.New("an account with this email already exists")
	ErrNoAccount   = errors.New("no such account")
	ErrLinkUnknown = errors.New("link is not valid")
	ErrLinkUsed    = errors.New("link was already used")
	ErrLinkExpired = errors.New("link has expired")
)

const accountCols = `a.id::text, a.email, a.password_hash, a.locale, a.roles, a.confirmed_at,
	coalesce(e.premium, false), e.premium_until, coalesce(e.version, 0)`

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func scanAccount(row pgx.Row) (*Account, error) {
	var a Account
	err := row.Scan(&a.ID, &a.Email, &a.PasswordHash, &a.Locale, &a.Roles, &a.ConfirmedAt, &a.Premium, &a.PremiumUntil, &a.EntVersion)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNoAccount
	}
	if err != nil {
		return nil, fmt.Errorf("read account: %w", err)
	}
	return &a, nil
}

func accountByEmail(ctx context.Context, q querier, email string) (*Account, error) {
	return scanAccount(q.QueryRow(ctx, `SELECT `+accountCols+` FROM auth_account a
		LEFT JOIN auth_entitlement e ON e.account_id = a.id WHERE lower(a.email) = lower($1)`, email))
}

func accountByID(ctx context.Context, q querier, id string) (*Account, error) {
	if _, err := uuid.Parse(id); err != nil {
		return nil, ErrNoAccount
	}
	return scanAccount(q.QueryRow(ctx, `SELECT `+accountCols+` FROM auth_account a
		LEFT JOIN auth_entitlement e ON e.account_id = a.id WHERE a.id = $1`, id))
}

func createAccount(ctx context.Context, tx pgx.Tx, email string, hash *string, locale string, roles []string, confirmed bool) (string, error) {
	id := uuid.NewString()
	var confirmedAt *time.Time
	if confirmed {
		now := time.Now()
		confirmedAt = &now
	}
	_, err := tx.Exec(ctx, `INSERT INTO auth_account (id, email, password_hash, locale, roles, confirmed_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		id, email, hash, locale, roles, confirmedAt)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" {
		return "", ErrEmailTaken
	}
	if err != nil {
		return "", fmt.Errorf("insert account: %w", err)
	}
	return id, nil
}

// newOnetime stores a confirmation or reset secret for account, usable until
// exp (on the service's clock), and returns it.
func newOnetime(ctx context.Context, tx pgx.Tx, kind, account string, exp time.Time) (string, time.Time, error) {
	prefix := map[string]string{"confirm": KindConfirm, "reset": KindReset}[kind]
	secret := NewSecret(prefix)
	h := sha256.Sum256([]byte(secret))
	exp = exp.UTC().Truncate(time.Second)
	if _, err := tx.Exec(ctx, `INSERT INTO auth_onetime (hash, kind, account_id, expires_at) VALUES ($1, $2, $3, $4)`,
		h[:], kind, account, exp); err != nil {
		return "", time.Time{}, fmt.Errorf("store %s link: %w", kind, err)
	}
	return secret, exp, nil
}

// peekOnetime returns the account of a usable secret of kind without using
// it: the cheap check before expensive work (useOnetime still decides, in
// the transaction that applies the link). now is the service's clock.
func peekOnetime(ctx context.Context, q querier, kind, secret string, now time.Time) (string, error) {
	prefix := map[string]string{"confirm": KindConfirm, "reset": KindReset}[kind]
	h, err := ParseSecret(prefix, secret)
	if err != nil {
		return "", ErrLinkUnknown
	}
	var account string
	var expires time.Time
	var used *time.Time
	err = q.QueryRow(ctx, `SELECT account_id::text, expires_at, used_at FROM auth_onetime WHERE hash = $1 AND kind = $2`,
		h[:], kind).Scan(&account, &expires, &used)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return "", ErrLinkUnknown
	case err != nil:
		return "", fmt.Errorf("read %s link: %w", kind, err)
	case used != nil:
		return "", ErrLinkUsed
	case !now.Before(expires):
		return "", ErrLinkExpired
	}
	return account, nil
}

// useOnetime consumes a secret of kind inside tx and returns its account;
// now is the service's clock.
func useOnetime(ctx context.Context, tx pgx.Tx, kind, secret string, now time.Time) (string, error) {
	prefix := map[string]string{"confirm": KindConfirm, "reset": KindReset}[kind]
	h, err := ParseSecret(prefix, secret)
	if err != nil {
		return "", ErrLinkUnknown
	}
	var account string
	var expires time.Time
	var used *time.Time
	err = tx.QueryRow(ctx, `SELECT account_id::text, expires_at, used_at FROM auth_onetime WHERE hash = $1 AND kind = $2 FOR UPDATE`,
		h[:], kind).Scan(&account, &expires, &used)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return "", ErrLinkUnknown
	case err != nil:
		return "", fmt.Errorf("read %s link: %w", kind, err)
	case used != nil:
		return "", ErrLinkUsed
	case !now.Before(expires):
		return "", ErrLinkExpired
	}
	if _, err := tx.Exec(ctx, `UPDATE auth_onetime SET used_at = now() WHERE hash = $1`, h[:]); err != nil {
		return "", fmt.Errorf("use %s link: %w", kind, err)
	}
	return account, nil
}

// normalizeEmail validates an address and returns it trimmed; the domain is
// lowercased (the local part is kept: uniqueness is case-insensitive anyway).
func normalizeEmail(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 254 {
		return "", errors.New("email is required (at most 254 characters)")
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return "", errors.New("email is not a valid address")
	}
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || !strings.Contains(s[at:], ".") {
		return "", errors.New("email is not a valid address")
	}
	return s[:at] + strings.ToLower(s[at:]), nil
}

// checkPasswordPolicy enforces the NIST SP 800-63B length rules: at least 10
// characters, at most 256 (argon2 cost is per byte, so an upper bound matters).
func checkPasswordPolicy(p string) error {
	n := utf8.RuneCountInString(p)
	if n < 10 {
		return errors.New("password must be at least 10 characters")
	}
	if n > 256 {
		return errors.New("password must be at most 256 characters")
	}
	return nil
}

func normalizeLocale(l string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(l)) {
	case "", "en":
		return "en", nil
	case "ru":
		return "ru", nil
	}
	return "", errors.New(`locale must be "en" or "ru"`)
}

func newEvent(typ, subject string, data any) (event.Event, error) {
	e := event.New()
	e.SetID(uuid.NewString())
	e.SetSource(Source)
	e.SetType(typ)
	e.SetSubject(subject)
	e.SetTime(time.Now().UTC())
	e.SetExtension("partitionkey", subject)
	if err := e.SetData(event.ApplicationJSON, data); err != nil {
		return e, fmt.Errorf("encode %s: %w", typ, err)
	}
	return e, nil
}

// CreateAdmin creates a confirmed admin account, or promotes an existing
// account to admin (setting its password when one is given). It is what
// `overture admin create` runs.
func CreateAdmin(ctx context.Context, pool *pgxpool.Pool, email, password string, p Argon2Params) (string, bool, error) {
	email, err := normalizeEmail(email)
	if err != nil {
		return "", false, err
	}
	var hash *string
	if password != "" {
		if err := checkPasswordPolicy(password); err != nil {
			return "", false, err
		}
		h, err := HashPassword(password, p)
		if err != nil {
			return "", false, err
		}
		hash = &h
	}
	var id string
	var created bool
	err = postgres.InTx(ctx, pool, func(tx pgx.Tx) error {
		a, err := accountByEmail(ctx, tx, email)
		if errors.Is(err, ErrNoAccount) {
			if hash == nil {
				return errors.New("a new admin needs a password (--password-stdin)")
			}
			id, err = createAccount(ctx, tx, email, hash, "en", []string{token.RoleListener, token.RoleAdmin}, true)
			created = true
			return err
		}
		if err != nil {
			return err
		}
		id = a.ID
		_, err = tx.Exec(ctx, `UPDATE auth_account SET
			roles = CASE WHEN 'admin' = ANY(roles) THEN roles ELSE array_append(roles, 'admin') END,
			confirmed_at = coalesce(confirmed_at, now()),
			password_hash = coalesce($2, password_hash), updated_at = now()
			WHERE id = $1`, a.ID, hash)
		if err != nil {
			return fmt.Errorf("promote account: %w", err)
		}
		return nil
	})
	return id, created, err
}
