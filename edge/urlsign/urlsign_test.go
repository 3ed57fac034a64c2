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
	withPaths := base
	withPaths.PremiumPaths = []string{"aac256/", "flac/t.flac"}
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
		{"unknown key", strings.Replace(sign(base), "v2.a.", "v2.zz.", 1), "tracks/x/a", "", ErrUnknownKey},
		{"flag flipped", strings.Replace(sign(base), ".-.", ".p.", 1), "tracks/x/a", "", ErrSignature},
		{"listener tier raised", strings.Replace(sign(withPaths), ".-.", ".l.", 1), "tracks/x/a", "", ErrSignature},
		{"premium paths dropped", dropPaths(sign(withPaths)), "tracks/x/a", "", ErrSignature},
		{"issue time moved", moveIssued(sign(base)), "tracks/x/a", "", ErrSignature},
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

func dropPaths(tok string) string {
	f := strings.Split(tok, ".")
	f[6] = ""
	return strings.Join(f, ".")
}

func moveIssued(tok string) string {
	f := strings.Split(tok, ".")
	f[2] = "1800000001"
	return strings.Join(f, ".")
}

func TestTokenCarriesPremiumPathsAndTier(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	in := Token{KeyID: "a", Issued: now, Expires: now.Add(time.Hour), Prefix: "tracks/x/v1/", PremiumPaths: []string{"aac256/", "flac/t.flac"}, ListenerPremium: true}
	s, err := keys.Sign(in)
	if err != nil {
		t.Fatal(err)
	}
	got, err := keys.Verify(s, "tracks/x/v1/master.m3u8", "", now)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Issued.Equal(now) || !got.ListenerPremium || got.Premium || strings.Join(got.PremiumPaths, ",") != "aac256/,flac/t.flac" {
		t.Fatalf("round trip: %+v", got)
	}
	for key, want := range map[string]bool{
		"tracks/x/v1/aac256/index.m3u8": true, "tracks/x/v1/aac256/seg1.m4s": true, "tracks/x/v1/flac/t.flac": true,
		"tracks/x/v1/flac/t.flac2": false, "tracks/x/v1/aac128/index.m3u8": false, "tracks/x/v1/aac2560/x": false, "tracks/x/v1/master.m3u8": false,
	} {
		if got.NeedsPremium(key) != want {
			t.Errorf("NeedsPremium(%s) = %v", key, !want)
		}
	}
	if _, err := keys.Sign(Token{KeyID: "a", Expires: now, Prefix: "p/", PremiumPaths: []string{"a\nb"}}); !errors.Is(err, ErrMalformed) {
		t.Errorf("premium path with a newline signed: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	good, _ := keys.Sign(Token{KeyID: "a", Issued: time.Unix(1_800_000_000, 0), Expires: time.Unix(1_900_000_000, 0), Prefix: "tracks/x/",
		ClientIP: "::1", Premium: true, PremiumPaths: []string{"aac256/"}, ListenerPremium: true})
	for _, s := range []string{good, "v2.a.1.2.-.eA..." + strings.Repeat("A", 43), "v2........", "v2.a.1.1.-.eA.eA.eA", "", "v2.a.01.1.-.eA.eA.eA.eA"} {
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
		if a, b := strings.Split(re, "."), strings.Split(s, "."); strings.Join(a[:8], ".") != strings.Join(b[:8], ".") {
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
