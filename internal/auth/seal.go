package auth

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/overture-music/overture/internal/config"
)

// Configuration keys of the key that encrypts signing-key seeds at rest.
const (
	// KeyKeyEncryption is the current key (base64, 32 bytes): it encrypts
	// new seeds, and on start every seed still under an old key.
	KeyKeyEncryption = "AUTH_KEY_ENCRYPTION_KEY"
	// KeyKeyEncryptionOld lists retired keys (base64, comma-separated) that
	// still decrypt; after a start has re-encrypted the rows they can go.
	KeyKeyEncryptionOld = "AUTH_KEY_ENCRYPTION_OLD_KEYS"
)

// ErrSealKeyUnknown means a stored seed is encrypted with a key that is
// neither the current nor one of the old keys: the configured key is wrong,
// or an old key was dropped before the rows were re-encrypted.
var ErrSealKeyUnknown = errors.New("encrypted with a key that is not configured")

// SeedCipher encrypts the signing keys' Ed25519 seeds with AES-256-GCM before
// they reach PostgreSQL, so a database dump or a read-only SQL injection does
// not hand out the power to mint access tokens. Each ciphertext is stored
// beside the id of the key that made it (a hash of the key, never the key),
// and is bound to its row's kid (additional data), so a ciphertext moved to
// another row does not decrypt.
type SeedCipher struct {
	current string                 // id of the key that encrypts
	aeads   map[string]cipher.AEAD // id → key, current and old
}

// NewSeedCipher returns a cipher that encrypts with current and decrypts
// with current or any of old (each 32 bytes).
func NewSeedCipher(current []byte, old ...[]byte) (*SeedCipher, error) {
	c := &SeedCipher{aeads: map[string]cipher.AEAD{}}
	for i, k := range append([][]byte{current}, old...) {
		if len(k) != 32 {
			return nil, fmt.Errorf("seed cipher: key %d is %d bytes, want 32", i, len(k))
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("seed cipher: %w", err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("seed cipher: %w", err)
		}
		id := sealKeyID(k)
		if i == 0 {
			c.current = id
		}
		c.aeads[id] = aead
	}
	return c, nil
}

// SeedCipherFromConfig reads AUTH_KEY_ENCRYPTION_KEY (required) and
// AUTH_KEY_ENCRYPTION_OLD_KEYS; errors name the key, never a value.
func SeedCipherFromConfig(cfg map[string]string) (*SeedCipher, error) {
	r := config.NewReader(cfg)
	current, old := readSeedKeys(r)
	if err := r.Err(); err != nil {
		return nil, err
	}
	return NewSeedCipher(current, old...)
}

// readSeedKeys reads the current and old seed keys from r, recording every
// problem on r.
func readSeedKeys(r *config.Reader) (current []byte, old [][]byte) {
	current = r.Key32(KeyKeyEncryption)
	for i, v := range strings.Split(r.SecretOptional(KeyKeyEncryptionOld).Reveal(), ",") {
		if v = strings.TrimSpace(v); v == "" {
			continue
		}
		k, err := config.DecodeKey32(v)
		if err != nil {
			r.Fail(KeyKeyEncryptionOld, "entry %d: %w", i+1, err)
			continue
		}
		old = append(old, k)
	}
	return current, old
}

// sealKeyID names a key without revealing it: the first 8 bytes of a
// domain-separated SHA-256.
func sealKeyID(k []byte) string {
	h := sha256.Sum256(append([]byte("overture auth seed key\x00"), k...))
	return hex.EncodeToString(h[:8])
}

// CurrentKeyID is the id stored beside seeds encrypted now.
func (c *SeedCipher) CurrentKeyID() string { return c.current }

// Seal encrypts seed for the row kid: nonce || ciphertext, and the key id.
func (c *SeedCipher) Seal(kid string, seed []byte) (sealed []byte, keyID string, err error) {
	aead := c.aeads[c.current]
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(seed)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, "", fmt.Errorf("seal signing key %s: %w", kid, err)
	}
	return aead.Seal(nonce, nonce, seed, []byte(kid)), c.current, nil
}

// Open decrypts what Seal made for the row kid under keyID.
func (c *SeedCipher) Open(kid, keyID string, sealed []byte) ([]byte, error) {
	aead, ok := c.aeads[keyID]
	if !ok {
		return nil, fmt.Errorf("signing key %s: %w (key id %s; set %s to the key that encrypted it, or list that key in %s)",
			kid, ErrSealKeyUnknown, keyID, KeyKeyEncryption, KeyKeyEncryptionOld)
	}
	if len(sealed) < aead.NonceSize() {
		return nil, fmt.Errorf("signing key %s: ciphertext too short", kid)
	}
	seed, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], []byte(kid))
	if err != nil {
		return nil, fmt.Errorf("signing key %s: decrypt with key id %s: %w", kid, keyID, err)
	}
	return seed, nil
}
