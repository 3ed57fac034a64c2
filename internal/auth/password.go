package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/argon2"
)

// Argon2Params are the argon2id cost parameters. The defaults follow the OWASP
// Password Storage Cheat Sheet's first recommended configuration: 19 MiB of
// memory, 2 iterations, 1 lane, a 16-byte salt and a 32-byte key. Every hash
// records its parameters, so raising them later keeps old hashes verifiable.
type Argon2Params struct {
	Time    uint32 // iterations
	Memory  uint32 // KiB
	Threads uint8
	SaltLen uint32
	KeyLen  uint32
}

// DefaultArgon2 is what new passwords are hashed with.
var DefaultArgon2 = Argon2Params{Time: 2, Memory: 19 * 1024, Threads: 1, SaltLen: 16, KeyLen: 32}

func (p Argon2Params) String() string {
	return fmt.Sprintf("argon2id t=%d m=%dKiB p=%d", p.Time, p.Memory, p.Threads)
}

// ErrBadHash is returned for a stored hash that is not an argon2id PHC string.
var ErrBadHash = errors.New("stored password hash is not argon2id")

// hashes counts argon2 derivations (hashing a new password or checking one):
// the CPU an anonymous caller can make auth spend, so it shows on a
// dashboard, and a test can check that a refused request cost none.
var hashes = prometheus.NewCounter(prometheus.CounterOpts{
	Name: "overture_auth_password_hashes_total",
	Help: "argon2id derivations: new password hashes and password checks.",
})

// PasswordHashes exposes the counter (tests, dashboards in process).
func PasswordHashes() prometheus.Counter { return hashes }

// HashPassword returns the PHC string $argon2id$v=19$m=..,t=..,p=..$salt$key.
func HashPassword(password string, p Argon2Params) (string, error) {
	hashes.Inc()
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// CheckPassword reports whether password matches the PHC hash, in constant time.
func CheckPassword(password, hash string) (bool, error) {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, ErrBadHash
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return false, ErrBadHash
	}
	var p Argon2Params
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil {
		return false, ErrBadHash
	}
	if p.Memory > 1<<22 || p.Time == 0 || p.Time > 64 || p.Threads == 0 { // argon2 panics on t=0 or p=0; refuse absurd costs from a corrupted row
		return false, ErrBadHash
	}
	b64 := base64.RawStdEncoding
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return false, ErrBadHash
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil || len(want) == 0 || len(want) > 128 {
		return false, ErrBadHash
	}
	hashes.Inc()
	got := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}
