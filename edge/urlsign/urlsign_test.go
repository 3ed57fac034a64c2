package urlsign

import (
	"errors"
	"strings"
	"testing"
	"time"
)

var keys = Keys{"a": []byte("0123456789abcdef0123"), "b": []byte("another-secret-of-length")}

func TestVerify(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	sign := func(tk Token) string {
		s, err := keys.Sign(tk)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	base := Token{KeyID: "a", Expires: now.Add(time.Minute), Prefix: "tracks/x/"}
	withIP := base
	withIP.ClientIP = "192.0.2.1"
	cases := []struct {
		name, tok, key, ip string
		want               error
	}{
		{"ok", sign(base), "tracks/x/seg-1.ts", "198.51.100.7", nil},
		{"ok second key", sign(Token{KeyID: "b", Expires: base.Expires, Prefix: "tracks/x/"}), "tracks/x/a", "", nil},
		{"expired", sign(Token{KeyID: "a", Expires: now, Prefix: "tracks/x/"}), "tracks/x/a", "", ErrExpired},
		{"outside prefix", sign(base), "tracks/y/seg-1.ts", "", ErrScope},
		{"ip bound ok", sign(withIP), "tracks/x/a", "192.0.2.1", nil},
		{"ip bound other", sign(withIP), "tracks/x/a", "192.0.2.2", ErrClientAddr},
		{"unknown key", strings.Replace(sign(base), "v1.a.", "v1.zz.", 1), "tracks/x/a", "", ErrUnknownKey},
		{"flag flipped", strings.Replace(sign(base), ".-.", ".p.", 1), "tracks/x/a", "", ErrSignature},
		{"truncated", sign(base)[:20], "tracks/x/a", "", ErrMalformed},
		{"empty", "", "tracks/x/a", "", ErrMalformed},
	}
	for _, c := range cases {
		_, err := keys.Verify(c.tok, c.key, c.ip, now)
		if !errors.Is(err, c.want) && !(c.want == nil && err == nil) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
	if _, err := keys.Sign(Token{KeyID: "a", Expires: now, Prefix: ""}); !errors.Is(err, ErrMalformed) {
		t.Errorf("empty prefix signed: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	good, _ := keys.Sign(Token{KeyID: "a", Expires: time.Unix(1_900_000_000, 0), Prefix: "tracks/x/", ClientIP: "::1", Premium: true})
	for _, s := range []string{good, "v1.a.1.-.eA.." + strings.Repeat("A", 43), "v1......", "v2.a.1.-.eA.eA.eA", "", "v1.a.01.-.eA.eA.eA"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tk, err := Parse(s)
		if err != nil {
			return
		}
		if tk.Prefix == "" || !validKID(tk.KeyID) || len(tk.sig) != 32 {
			t.Fatalf("accepted invalid token %q: %+v", s, tk)
		}
		// A parsed token re-encodes to itself (no two spellings of one token).
		tk2 := tk
		re, err := Sign(keys["a"], tk2)
		if err != nil {
			t.Fatal(err)
		}
		if a, b := strings.Split(re, "."), strings.Split(s, "."); strings.Join(a[:6], ".") != strings.Join(b[:6], ".") {
			t.Fatalf("non-canonical token %q re-encodes as %q", s, re)
		}
		// Only a genuine signature verifies.
		if _, err := keys.Verify(s, tk.Prefix, tk.ClientIP, time.Unix(0, 0)); err == nil && s != good {
			if _, err2 := keys.Verify(re, tk.Prefix, tk.ClientIP, time.Unix(0, 0)); err2 != nil {
				t.Fatalf("forged token %q verified", s)
			}
		}
	})
}
