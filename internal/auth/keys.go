package auth

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/internal/postgres"
	"github.com/overture-music/overture/internal/token"
)

// Keyring holds the access-token signing keys. Keys live in PostgreSQL so that
// every replica and every restart signs with, and publishes, the same keys.
//
// Rotation: when the active key is older than RotateEvery, one replica (under a
// transaction-scoped advisory lock) retires it and inserts a new one. A new key
// is published in the JWKS PublishDelay before it starts signing, so verifiers
// that cache the JWKS know it before they meet it; a retired key stays
// published until every token it could have signed has expired.
//
// Seeds are stored encrypted by Seeds (AES-256-GCM under
// AUTH_KEY_ENCRYPTION_KEY). Under the same lock, every Ensure re-encrypts
// rows still under an old key (or in plain text, from before encryption)
// with the current one, which is how the encryption key rotates.
type Keyring struct {
	Pool         *pgxpool.Pool
	Seeds        *SeedCipher   // required
	RotateEvery  time.Duration // default 24 h
	PublishDelay time.Duration // default 2 min
	TokenTTL     time.Duration // longest access-token lifetime; default 15 min
	Leeway       time.Duration // verifier clock skew allowance; default 1 min
	Now          func() time.Time

	mu     sync.RWMutex
	keys   []ringKey // newest first
	loaded time.Time
}

type ringKey struct {
	key          token.Key
	created      time.Time
	retired      *time.Time
	publishUntil *time.Time
}

func (k *Keyring) now() time.Time {
	if k.Now != nil {
		return k.Now()
	}
	return time.Now()
}

func (k *Keyring) defaults() {
	if k.RotateEvery == 0 {
		k.RotateEvery = 24 * time.Hour
	}
	if k.PublishDelay == 0 {
		k.PublishDelay = 2 * time.Minute
	}
	if k.TokenTTL == 0 {
		k.TokenTTL = 15 * time.Minute
	}
	if k.Leeway == 0 {
		k.Leeway = time.Minute
	}
}

// Ensure makes sure an active key exists and rotates it when it is due, then
// reloads the ring.
func (k *Keyring) Ensure(ctx context.Context) error { return k.rotate(ctx, false) }

// Rotate retires the active key now and creates a new one.
func (k *Keyring) Rotate(ctx context.Context) error { return k.rotate(ctx, true) }

func (k *Keyring) rotate(ctx context.Context, force bool) error {
	k.defaults()
	if k.Seeds == nil {
		return errors.New("signing keys: no seed cipher (" + KeyKeyEncryption + ")")
	}
	now := k.now()
	err := postgres.InTx(ctx, k.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('auth_signing_key'))`); err != nil {
			return fmt.Errorf("lock signing keys: %w", err)
		}
		if err := k.reseal(ctx, tx); err != nil {
			return err
		}
		var created time.Time
		err := tx.QueryRow(ctx, `SELECT created_at FROM auth_signing_key WHERE retired_at IS NULL ORDER BY created_at DESC LIMIT 1`).Scan(&created)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
		case err != nil:
			return fmt.Errorf("read active signing key: %w", err)
		case !force && now.Sub(created) < k.RotateEvery:
			return nil
		}
		// The retiring key keeps signing until the new one is PublishDelay old.
		until := now.Add(k.PublishDelay + k.TokenTTL + k.Leeway)
		if _, err := tx.Exec(ctx, `UPDATE auth_signing_key SET retired_at = $1, publish_until = $2 WHERE retired_at IS NULL`, now, until); err != nil {
			return fmt.Errorf("retire signing key: %w", err)
		}
		nk, err := token.NewKey(now.UTC().Format("20060102T150405Z") + "-" + uuid.NewString()[:8])
		if err != nil {
			return err
		}
		sealed, keyID, err := k.Seeds.Seal(nk.ID, nk.Private.Seed())
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO auth_signing_key (kid, private_key, enc_key_id, created_at) VALUES ($1, $2, $3, $4)`,
			nk.ID, sealed, keyID, now); err != nil {
			return fmt.Errorf("store signing key: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return k.Load(ctx)
}

// Load reads the published keys from PostgreSQL.
func (k *Keyring) Load(ctx context.Context) error {
	k.defaults()
	if k.Seeds == nil {
		return errors.New("signing keys: no seed cipher (" + KeyKeyEncryption + ")")
	}
	now := k.now()
	rows, err := k.Pool.Query(ctx, `SELECT kid, private_key, enc_key_id, created_at, retired_at, publish_until FROM auth_signing_key ORDER BY created_at DESC`)
	if err != nil {
		return fmt.Errorf("load signing keys: %w", err)
	}
	var keys []ringKey
	for rows.Next() {
		var rk ringKey
		var stored []byte
		var keyID *string
		if err := rows.Scan(&rk.key.ID, &stored, &keyID, &rk.created, &rk.retired, &rk.publishUntil); err != nil {
			rows.Close()
			return fmt.Errorf("scan signing key: %w", err)
		}
		seed, err := k.open(rk.key.ID, keyID, stored)
		if err != nil {
			rows.Close()
			return err
		}
		if len(seed) != ed25519.SeedSize {
			rows.Close()
			return fmt.Errorf("signing key %s: bad seed length %d", rk.key.ID, len(seed))
		}
		if rk.publishUntil != nil && !now.Before(*rk.publishUntil) {
			continue
		}
		rk.key.Private = ed25519.NewKeyFromSeed(seed)
		keys = append(keys, rk)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load signing keys: %w", err)
	}
	k.mu.Lock()
	k.keys, k.loaded = keys, now
	k.mu.Unlock()
	return nil
}

// open decrypts a stored seed; a NULL key id is a plaintext seed from before
// encryption (the next Ensure encrypts it).
func (k *Keyring) open(kid string, keyID *string, stored []byte) ([]byte, error) {
	if keyID == nil {
		return stored, nil
	}
	return k.Seeds.Open(kid, *keyID, stored)
}

// reseal re-encrypts, with the current key, every seed stored in plain text
// or under an old key. It runs in rotate's locked transaction.
func (k *Keyring) reseal(ctx context.Context, tx pgx.Tx) error {
	rows, err := tx.Query(ctx, `SELECT kid, private_key, enc_key_id FROM auth_signing_key WHERE enc_key_id IS DISTINCT FROM $1`, k.Seeds.CurrentKeyID())
	if err != nil {
		return fmt.Errorf("read signing keys to re-encrypt: %w", err)
	}
	type row struct {
		kid    string
		stored []byte
		keyID  *string
	}
	var todo []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.kid, &r.stored, &r.keyID); err != nil {
			rows.Close()
			return fmt.Errorf("scan signing key: %w", err)
		}
		todo = append(todo, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read signing keys to re-encrypt: %w", err)
	}
	for _, r := range todo {
		seed, err := k.open(r.kid, r.keyID, r.stored)
		if err != nil {
			return err
		}
		if len(seed) != ed25519.SeedSize {
			return fmt.Errorf("signing key %s: bad seed length %d", r.kid, len(seed))
		}
		sealed, keyID, err := k.Seeds.Seal(r.kid, seed)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE auth_signing_key SET private_key = $2, enc_key_id = $3 WHERE kid = $1`, r.kid, sealed, keyID); err != nil {
			return fmt.Errorf("re-encrypt signing key %s: %w", r.kid, err)
		}
	}
	return nil
}

// Current returns the key that signs now: the newest key that has been
// published for PublishDelay, or the newest key when none has (first start).
func (k *Keyring) Current() (token.Key, error) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if len(k.keys) == 0 {
		return token.Key{}, errors.New("no signing key loaded")
	}
	now := k.now()
	for _, rk := range k.keys {
		if now.Sub(rk.created) >= k.PublishDelay && (rk.publishUntil == nil || now.Before(*rk.publishUntil)) {
			return rk.key, nil
		}
	}
	return k.keys[len(k.keys)-1].key, nil
}

// JWKS returns the public keys verifiers must accept now.
func (k *Keyring) JWKS() token.JWKS {
	k.mu.RLock()
	defer k.mu.RUnlock()
	now := k.now()
	set := token.JWKS{Keys: []token.JWK{}}
	for _, rk := range k.keys {
		if rk.publishUntil == nil || now.Before(*rk.publishUntil) {
			set.Keys = append(set.Keys, token.PublicJWK(rk.key))
		}
	}
	return set
}

// Key implements token.KeySource for verifying our own tokens in process. An
// unknown kid reloads the ring (at most once a second): another replica may
// have rotated.
func (k *Keyring) Key(ctx context.Context, kid string) (ed25519.PublicKey, error) {
	if pk, ok := k.lookup(kid); ok {
		return pk, nil
	}
	k.mu.RLock()
	recent := k.now().Sub(k.loaded) < time.Second
	k.mu.RUnlock()
	if !recent {
		if err := k.Load(ctx); err != nil {
			return nil, err
		}
		if pk, ok := k.lookup(kid); ok {
			return pk, nil
		}
	}
	return nil, token.ErrUnknownKey
}

func (k *Keyring) lookup(kid string) (ed25519.PublicKey, bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	now := k.now()
	i := slices.IndexFunc(k.keys, func(rk ringKey) bool { return rk.key.ID == kid })
	if i < 0 || (k.keys[i].publishUntil != nil && !now.Before(*k.keys[i].publishUntil)) {
		return nil, false
	}
	return k.keys[i].key.Public(), true
}
