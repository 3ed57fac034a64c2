package idp

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/overture-music/overture/internal/auth"
)

// Errors of the local provider's user store.
var (
	ErrLocalUserExists = errors.New("an account with this email already exists at the local identity provider")
	ErrLocalBadEmail   = errors.New("not an email address")
	ErrLocalWeakPass   = errors.New("the password needs at least 8 characters")
)

// LocalUsers is the local identity provider's own accounts: an email and an
// argon2id password hash (auth.HashPassword, the same PHC strings auth
// stores), and a random subject. The provider signs in only these accounts,
// with their password; it never asserts an identity for an email nobody
// signed up with here. The store is a JSON file (0600) under the data
// directory, so the accounts survive a restart of `make run` and a subject
// is never handed to a second person after one.
type LocalUsers struct {
	// Argon2 are the hashing parameters (default auth.DefaultArgon2).
	Argon2 auth.Argon2Params

	mu    sync.Mutex
	path  string
	users map[string]localUser // by normalised email
	dummy string               // hash checked for unknown emails, so both take as long
}

type localUser struct {
	Subject string    `json:"subject"`
	Email   string    `json:"email"`
	Hash    string    `json:"password_hash"`
	Created time.Time `json:"created"`
}

// OpenLocalUsers loads the store kept in path ("" keeps it in memory only).
func OpenLocalUsers(path string) (*LocalUsers, error) {
	u := &LocalUsers{path: path, users: map[string]localUser{}}
	if path == "" {
		return u, nil
	}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return u, nil
	case err != nil:
		return nil, fmt.Errorf("local idp users: %w", err)
	}
	var list []localUser
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, fmt.Errorf("local idp users %s: %w", path, err)
	}
	for _, lu := range list {
		u.users[lu.Email] = lu
	}
	return u, nil
}

func (u *LocalUsers) params() auth.Argon2Params {
	if u.Argon2 == (auth.Argon2Params{}) {
		return auth.DefaultArgon2
	}
	return u.Argon2
}

func normalizeLocalEmail(s string) (string, error) {
	a, err := mail.ParseAddress(strings.TrimSpace(s))
	if err != nil || a.Name != "" || !strings.Contains(a.Address, "@") {
		return "", ErrLocalBadEmail
	}
	return strings.ToLower(a.Address), nil
}

// SignUp creates an account for email with password and returns the user
// the provider will assert for it.
func (u *LocalUsers) SignUp(email, password string) (User, error) {
	e, err := normalizeLocalEmail(email)
	if err != nil {
		return User{}, err
	}
	if len([]rune(password)) < 8 {
		return User{}, ErrLocalWeakPass
	}
	hash, err := auth.HashPassword(password, u.params())
	if err != nil {
		return User{}, fmt.Errorf("local idp: %w", err)
	}
	sub := make([]byte, 16)
	if _, err := rand.Read(sub); err != nil {
		return User{}, fmt.Errorf("local idp: %w", err)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if _, ok := u.users[e]; ok {
		return User{}, ErrLocalUserExists
	}
	lu := localUser{Subject: "local-" + base64.RawURLEncoding.EncodeToString(sub), Email: e, Hash: hash, Created: time.Now().UTC()}
	u.users[e] = lu
	if err := u.save(); err != nil {
		delete(u.users, e)
		return User{}, err
	}
	return lu.user(), nil
}

// Check returns the user for email when password is theirs.
func (u *LocalUsers) Check(email, password string) (User, bool) {
	e, err := normalizeLocalEmail(email)
	u.mu.Lock()
	lu, ok := u.users[e]
	if u.dummy == "" {
		u.dummy, _ = auth.HashPassword("not a password", u.params())
	}
	dummy := u.dummy
	u.mu.Unlock()
	if err != nil || !ok {
		_, _ = auth.CheckPassword(password, dummy)
		return User{}, false
	}
	if good, err := auth.CheckPassword(password, lu.Hash); err != nil || !good {
		return User{}, false
	}
	return lu.user(), true
}

func (lu localUser) user() User {
	// The provider created this account and asserts only it; auth never
	// links a local identity to an existing Overture account by email.
	return User{Subject: lu.Subject, Email: lu.Email, EmailVerified: true}
}

// save writes the store (called with mu held): aside, then renamed.
func (u *LocalUsers) save() error {
	if u.path == "" {
		return nil
	}
	list := make([]localUser, 0, len(u.users))
	for _, lu := range u.users {
		list = append(list, lu)
	}
	b, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return fmt.Errorf("local idp users: %w", err)
	}
	dir := filepath.Dir(u.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("local idp users: %w", err)
	}
	f, err := os.CreateTemp(dir, ".users-*")
	if err != nil {
		return fmt.Errorf("local idp users: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("local idp users: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("local idp users: %w", err)
	}
	if err := os.Rename(f.Name(), u.path); err != nil {
		return fmt.Errorf("local idp users: %w", err)
	}
	return nil
}
