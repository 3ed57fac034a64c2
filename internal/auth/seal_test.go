package auth_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/overture-music/overture/internal/auth"
	"github.com/overture-music/overture/internal/postgres"
	"github.com/overture-music/overture/internal/testenv"
)

// sealBundle is a migrated auth database and a way to open a keyring on it
// with a given AUTH_KEY_ENCRYPTION_KEY / _OLD_KEYS.
type sealBundle struct {
	pool *postgres.Pool
}

func newSealBundle(t *testing.T) *sealBundle {
	t.Helper()
	ctx := context.Background()
	pool, err := postgres.Open(ctx, testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := auth.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	return &sealBundle{pool: pool}
}

// ring opens a keyring the way auth's Start does, from cfg keys.
func (b *sealBundle) ring(current string, old ...string) (*auth.Keyring, error) {
	seeds, err := auth.SeedCipherFromConfig(map[string]string{
		auth.KeyKeyEncryption: current, auth.KeyKeyEncryptionOld: strings.Join(old, ","),
	})
	if err != nil {
		return nil, err
	}
	k := &auth.Keyring{Pool: b.pool.Pool, Seeds: seeds}
	return k, k.Ensure(context.Background())
}

type storedKey struct {
	kid    string
	stored []byte
	keyID  *string
}

func (b *sealBundle) rows(t *testing.T) []storedKey {
	t.Helper()
	rows, err := b.pool.Query(context.Background(), `SELECT kid, private_key, enc_key_id FROM auth_signing_key ORDER BY created_at`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []storedKey
	for rows.Next() {
		var s storedKey
		if err := rows.Scan(&s.kid, &s.stored, &s.keyID); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

func newKEK(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// Someone with a copy of the database (a dump, a backup, read-only SQL) no
// longer finds the seed that mints access tokens: the stored row never
// contains it, and the key that decrypts it is not in the database.
func TestSigningKeySeedEncryptedAtRest(t *testing.T) {
	t.Parallel()
	b := newSealBundle(t)
	kek := newKEK(t)
	ring, err := b.ring(kek)
	if err != nil {
		t.Fatal(err)
	}
	if err := ring.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	cur, err := ring.Current()
	if err != nil {
		t.Fatal(err)
	}
	rows := b.rows(t)
	if len(rows) != 2 {
		t.Fatalf("%d stored keys, want 2", len(rows))
	}
	seed := cur.Private.Seed()
	for _, r := range rows {
		if r.keyID == nil || *r.keyID == "" {
			t.Errorf("key %s stored without its encryption key id", r.kid)
		}
		if bytes.Contains(r.stored, seed) || bytes.Contains(r.stored, cur.Private) {
			t.Errorf("key %s: the stored row contains the seed", r.kid)
		}
		raw, _ := base64.StdEncoding.DecodeString(kek)
		if bytes.Contains(r.stored, raw) || strings.Contains(*r.keyID, kek) {
			t.Errorf("key %s: the row contains the encryption key", r.kid)
		}
	}
	// A second replica with the same key signs with the same key.
	other, err := b.ring(kek)
	if err != nil {
		t.Fatal(err)
	}
	if oc, _ := other.Current(); !oc.Private.Equal(cur.Private) {
		t.Fatal("another replica decrypted a different key")
	}
}

// Auth started with the wrong AUTH_KEY_ENCRYPTION_KEY does not start, and
// says which key to set; it neither signs with nor replaces the stored keys.
func TestSigningKeyWrongEncryptionKey(t *testing.T) {
	t.Parallel()
	b := newSealBundle(t)
	if _, err := b.ring(newKEK(t)); err != nil {
		t.Fatal(err)
	}
	before := b.rows(t)
	_, err := b.ring(newKEK(t))
	if !errors.Is(err, auth.ErrSealKeyUnknown) || !strings.Contains(err.Error(), auth.KeyKeyEncryption) {
		t.Fatalf("wrong key: %v, want ErrSealKeyUnknown naming %s", err, auth.KeyKeyEncryption)
	}
	after := b.rows(t)
	if len(after) != len(before) || !bytes.Equal(after[0].stored, before[0].stored) {
		t.Fatal("a start with the wrong key changed the stored keys")
	}
	for name, v := range map[string]string{"missing": "", "short": base64.StdEncoding.EncodeToString([]byte("short")), "not base64": "!!"} {
		_, err := b.ring(v)
		if err == nil || !strings.Contains(err.Error(), auth.KeyKeyEncryption) {
			t.Errorf("%s key: %v, want an error naming %s", name, err, auth.KeyKeyEncryption)
		}
	}
}

// Rotating the encryption key: start with the new key and the old one in
// AUTH_KEY_ENCRYPTION_OLD_KEYS; every row is re-encrypted with the new key
// (the signing keys themselves do not change, so issued tokens stay valid);
// the next start needs only the new key, and the old one opens nothing.
func TestSigningKeyEncryptionKeyRotation(t *testing.T) {
	t.Parallel()
	b := newSealBundle(t)
	oldKEK, newKEKv := newKEK(t), newKEK(t)
	ring, err := b.ring(oldKEK)
	if err != nil {
		t.Fatal(err)
	}
	signing, _ := ring.Current()
	before := b.rows(t)

	if _, err := b.ring(newKEKv); !errors.Is(err, auth.ErrSealKeyUnknown) {
		t.Fatalf("new key without the old one: %v", err)
	}
	rotated, err := b.ring(newKEKv, oldKEK)
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := rotated.Current(); c.ID != signing.ID || !c.Private.Equal(signing.Private) {
		t.Fatal("rotating the encryption key changed the signing key")
	}
	after := b.rows(t)
	if *after[0].keyID == *before[0].keyID || bytes.Equal(after[0].stored, before[0].stored) {
		t.Fatal("the row was not re-encrypted with the new key")
	}
	if _, err := b.ring(newKEKv); err != nil {
		t.Fatalf("start with only the new key after rotation: %v", err)
	}
	if _, err := b.ring(oldKEK); !errors.Is(err, auth.ErrSealKeyUnknown) {
		t.Fatalf("the retired key still opens the rows: %v", err)
	}
}

// A development database from before encryption holds plain seeds; the
// first start encrypts them in place and keeps signing with the same key.
func TestPlaintextSigningKeysMigrated(t *testing.T) {
	t.Parallel()
	b := newSealBundle(t)
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.pool.Exec(context.Background(), `INSERT INTO auth_signing_key (kid, private_key, created_at) VALUES ('legacy', $1, now() - interval '1 hour')`, priv.Seed()); err != nil {
		t.Fatal(err)
	}
	ring, err := b.ring(newKEK(t))
	if err != nil {
		t.Fatal(err)
	}
	rows := b.rows(t)
	if len(rows) != 1 || rows[0].keyID == nil || bytes.Contains(rows[0].stored, priv.Seed()) {
		t.Fatalf("legacy row not encrypted: %d rows", len(rows))
	}
	c, err := ring.Current()
	if err != nil || c.ID != "legacy" || !c.Public().Equal(pub) {
		t.Fatalf("after migration the ring signs with %s (%v)", c.ID, err)
	}
}
