package auth_test

import (
	"strings"
	"testing"

	"github.com/overture-music/overture/internal/auth"
)

func FuzzParseSecret(f *testing.F) {
	good := auth.NewSecret(auth.KindRefresh)
	for _, s := range []string{good, "", "ort_", "ort_" + strings.Repeat("A", 43), "ort_" + strings.Repeat("A", 42) + "B",
		"oct_" + good[4:], good + "=", "ort_" + strings.Repeat("-", 43), "ort_" + strings.Repeat("/", 43)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := auth.ParseSecret(auth.KindRefresh, s)
		if err != nil {
			return
		}
		// Whatever parses is exactly prefix + 43 base64url characters that
		// re-encode to themselves, and hashes deterministically.
		if len(s) != 47 || !strings.HasPrefix(s, "ort_") || strings.ContainsAny(s[4:], "+/=") {
			t.Fatalf("accepted %q", s)
		}
		if h2, _ := auth.ParseSecret(auth.KindRefresh, s); h2 != h {
			t.Fatal("hash not deterministic")
		}
		if _, err := auth.ParseSecret(auth.KindConfirm, s); err == nil {
			t.Fatal("a refresh token parsed as a confirmation token")
		}
	})
}

func TestPasswordHash(t *testing.T) {
	t.Parallel()
	h, err := auth.HashPassword("s3cret password", auth.DefaultArgon2)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q does not record the default parameters", h)
	}
	for pw, want := range map[string]bool{"s3cret password": true, "s3cret passwordx": false, "": false} {
		if ok, err := auth.CheckPassword(pw, h); err != nil || ok != want {
			t.Fatalf("CheckPassword(%q) = %v, %v", pw, ok, err)
		}
	}
	for _, bad := range []string{"", "$2a$10$bcrypt", "$argon2id$v=19$m=99999999,t=1,p=1$AAAA$AAAA", "$argon2id$v=19$m=1024,t=1,p=1$!!$AAAA"} {
		if _, err := auth.CheckPassword("x", bad); err == nil {
			t.Fatalf("hash %q accepted", bad)
		}
	}
}

func FuzzCheckPasswordHash(f *testing.F) {
	h, _ := auth.HashPassword("pw", auth.Argon2Params{Time: 1, Memory: 64, Threads: 1, SaltLen: 8, KeyLen: 16})
	for _, s := range []string{h, "", "$argon2id$", "$argon2id$v=19$m=64,t=1,p=1$$", "$argon2id$v=19$m=64,t=1,p=0$AAAA$AAAA"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		// Bound the cost a corrupted hash can ask for, so fuzzing stays fast:
		// the parser itself refuses m > 4 GiB and t > 64.
		if strings.Contains(s, "m=") && !strings.Contains(s, "m=64,") {
			return
		}
		ok, err := auth.CheckPassword("pw", s)
		if ok && err != nil {
			t.Fatal("both ok and error")
		}
	})
}
