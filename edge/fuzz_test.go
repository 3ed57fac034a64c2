package edge

import (
	"strings"
	"testing"
)

func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"bytes=0-0", "bytes=-1", "bytes=5-", "bytes=0-1,3-4", "bytes=", "bytes=-", "bytes=1-0",
		"bytes=99999999999999999999-", "BYTES = 1-2", "bytes=,,0-1", "bytes=0-1,-0", "x=1-2"} {
		f.Add(s, int64(100))
		f.Add(s, int64(0))
	}
	f.Fuzz(func(t *testing.T, h string, size int64) {
		if size < 0 {
			size = -size
		}
		if size < 0 { // MinInt64
			return
		}
		rs, err := parseRange(h, size)
		if err != nil {
			if rs != nil {
				t.Fatalf("error %v with ranges %v", err, rs)
			}
			return
		}
		if len(rs) == 0 || len(rs) > maxRanges {
			t.Fatalf("%q: %d ranges without error", h, len(rs))
		}
		var total int64
		for _, r := range rs {
			if r.start < 0 || r.length <= 0 || r.start+r.length > size {
				t.Fatalf("%q size %d: range %+v outside the object", h, size, r)
			}
			total += r.length
		}
		if len(rs) > 1 && total > size {
			t.Fatalf("%q: ranges amplify (%d > %d)", h, total, size)
		}
	})
}

func FuzzValidKey(f *testing.F) {
	for _, s := range []string{"a/b.ts", "../x", "a//b", "/a", "a/./b", "a/..", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, k string) {
		if !validKey(k) {
			return
		}
		for _, bad := range []string{"/../", "//"} {
			if contains("/"+k+"/", bad) {
				t.Fatalf("accepted %q", k)
			}
		}
	})
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// The allocation-free key checks on the hit path agree with their plain
// definitions: no "." or ".." segment, and a marker occurring in "/"+key.
func FuzzKeyChecks(f *testing.F) {
	for _, s := range []string{"tracks/t1/hls/seg.ts", "a/./b", "a/../b", "..", ".", "a/..", "./a", "premium/x", "a/premium/x",
		"remium/x", "x/y", "a.b/..c", ""} {
		f.Add(s, "/premium/")
		f.Add(s, "premium")
		f.Add(s, "/")
	}
	f.Fuzz(func(t *testing.T, key, marker string) {
		plainSegments := true
		for _, seg := range strings.Split(key, "/") {
			if seg == "." || seg == ".." {
				plainSegments = false
			}
		}
		plainValid := plainSegments && key != "" && len(key) <= 1024 && !strings.HasPrefix(key, "/") &&
			!strings.HasSuffix(key, "/") && !strings.Contains(key, "//") && !strings.ContainsAny(key, "\x00\r\n")
		if got := validKey(key); got != plainValid {
			t.Fatalf("validKey(%q) = %v, want %v", key, got, plainValid)
		}
		s := &Server{cfg: Config{PremiumMarkers: []string{marker}}}
		want := marker != "" && strings.Contains("/"+key, marker)
		if got := s.premiumKey(key); got != want {
			t.Fatalf("premiumKey(%q) with marker %q = %v, want %v", key, marker, got, want)
		}
	})
}
