package webapp

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"

	"github.com/overture-music/overture/internal/webapp/bundle"
)

// built is a dist/ built now from web/src (the embedded one may be missing
// in a fresh clone, or stale).
func built(t *testing.T) fstest.MapFS {
	t.Helper()
	if _, err := os.Stat(filepath.Join("..", "..", ".cache", "hlsjs", bundle.HLSJSVersion, "package", "dist", "hls.mjs")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("hls.js is missing; `make deps` (hack/deps/hlsjs.sh) fetches it")
		}
		t.Skip("hls.js is missing; run `make deps`")
	}
	out := t.TempDir()
	_, err := bundle.Build(bundle.Options{Root: filepath.Join("..", ".."), Out: out})
	require.NoError(t, err)
	m := fstest.MapFS{}
	require.NoError(t, filepath.Walk(out, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(out, p)
		m["dist/"+filepath.ToSlash(rel)] = &fstest.MapFile{Data: b}
		return nil
	}))
	return m
}

type answer struct {
	code int
	hdr  http.Header
	body string
}

func get(t *testing.T, h http.Handler, method, path string) answer {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	b, _ := io.ReadAll(rec.Result().Body)
	return answer{rec.Code, rec.Result().Header, string(b)}
}

var next = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusTeapot)
	_, _ = io.WriteString(w, "next "+r.Method+" "+r.URL.Path)
})

// The app's pages, its hashed assets and everything else: what a browser
// and a cache see.
func TestServesPagesAssetsAndFallsThrough(t *testing.T) {
	fsys := built(t)
	h, err := newHandler(fsys, map[string]string{"CDN_POPS": "pop-a=eu-west=http://127.0.0.1:9101,pop-b=ru=https://pop.example:8443"}, next)
	require.NoError(t, err)
	require.True(t, h.Built())

	page := get(t, h, "GET", "/")
	require.Equal(t, http.StatusOK, page.code)
	require.Equal(t, CacheNoCache, page.hdr.Get("Cache-Control"))
	require.Equal(t, "text/html; charset=utf-8", page.hdr.Get("Content-Type"))
	csp := page.hdr.Get("Content-Security-Policy")
	require.Contains(t, csp, "script-src 'self';")
	require.NotContains(t, csp, "unsafe-inline")
	require.NotContains(t, csp, "unsafe-eval")
	require.Contains(t, csp, "media-src 'self' blob: http://127.0.0.1:9101 https://pop.example:8443")
	require.Contains(t, csp, "connect-src 'self' http://127.0.0.1:9101 https://pop.example:8443")
	// No inline script or style anywhere in the page.
	require.NotRegexp(t, `<script(?:\s[^>]*)?>\s*[^<\s]`, page.body)
	require.NotContains(t, page.body, "<style")
	require.NotContains(t, page.body, " style=")

	// The page names its assets by hash; they are served for a year.
	refs := regexp.MustCompile(`(?:src|href)="(/assets/[^"]+)"`).FindAllStringSubmatch(page.body, -1)
	require.Len(t, refs, 2, page.body)
	for _, r := range refs {
		a := get(t, h, "GET", r[1])
		require.Equal(t, http.StatusOK, a.code, r[1])
		require.Equal(t, CacheImmutable, a.hdr.Get("Cache-Control"))
		require.Regexp(t, `^/assets/main-[A-Z0-9]{8}\.(js|css)$`, r[1])
		require.NotEmpty(t, a.body)
		if strings.HasSuffix(r[1], ".js") {
			require.Equal(t, "text/javascript; charset=utf-8", a.hdr.Get("Content-Type"))
			require.Contains(t, a.body, "MANIFEST_PARSED", "hls.js is not in the bundle")
		}
	}

	for _, path := range []string{"/search", "/artist/1b4e28ba-2fa1-11d2-883f-0016d3cca427", "/admin", "/admin/uploads", "/confirm", "/reset-password"} {
		a := get(t, h, "GET", path+"?token=x")
		require.Equal(t, http.StatusOK, a.code, path)
		require.Equal(t, page.body, a.body, path)
	}
	head := get(t, h, "HEAD", "/charts")
	require.Equal(t, http.StatusOK, head.code)
	require.Empty(t, head.body)

	// Not the app's: an API path, a POST, a path outside the routes.
	for _, tc := range []struct{ method, path string }{
		{"GET", "/v1/nothing"}, {"POST", "/"}, {"GET", "/artist"}, {"GET", "/admins"}, {"GET", "/openapi.yaml"},
	} {
		a := get(t, h, tc.method, tc.path)
		require.Equal(t, http.StatusTeapot, a.code, "%s %s", tc.method, tc.path)
	}

	// An asset of another release is a 404 problem telling to reload.
	gone := get(t, h, "GET", "/assets/main-AAAAAAAA.js")
	require.Equal(t, http.StatusNotFound, gone.code)
	require.Equal(t, "application/problem+json", gone.hdr.Get("Content-Type"))
	require.Contains(t, gone.body, "reload the page")
}

// A clone without a build still builds and serves the APIs; the app's
// pages say how to build it.
func TestNotBuiltSaysHowToBuild(t *testing.T) {
	h, err := newHandler(fstest.MapFS{"dist/.gitignore": &fstest.MapFile{Data: []byte("*\n")}}, nil, next)
	require.NoError(t, err)
	require.False(t, h.Built())
	a := get(t, h, "GET", "/")
	require.Equal(t, http.StatusServiceUnavailable, a.code)
	require.Contains(t, a.body, "hack/deps/webapp.sh")
	require.Equal(t, http.StatusTeapot, get(t, h, "GET", "/v1/search").code)
}

func TestBadPOPListIsRefused(t *testing.T) {
	_, err := newHandler(fstest.MapFS{}, map[string]string{"CDN_POPS": "pop-a=eu"}, next)
	require.ErrorContains(t, err, "CDN_POPS")
}

// The gateway serves index.html exactly for the routes the client-side
// router knows.
func TestRoutesMatchTheRouter(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "..", "web", "src", "router.ts"))
	require.NoError(t, err)
	block := regexp.MustCompile(`(?s)export const ROUTES = \[(.*?)\];`).FindSubmatch(src)
	require.NotNil(t, block, "ROUTES not found in router.ts")
	var ts []string
	for _, m := range regexp.MustCompile(`'([^']*)'`).FindAllSubmatch(block[1], -1) {
		ts = append(ts, string(m[1]))
	}
	require.Equal(t, Routes, ts)
}

// The embedded build is the build of the sources in the tree: a change to
// web/src without hack/deps/webapp.sh fails here, not in a browser.
func TestEmbeddedBuildIsCurrent(t *testing.T) {
	fresh := built(t)
	h, err := New(nil, next)
	require.NoError(t, err)
	if !h.Built() {
		if os.Getenv("CI") == "true" {
			t.Fatal(ErrNotBuilt)
		}
		t.Skip(ErrNotBuilt.Error())
	}
	want, err := fresh.ReadFile("dist/manifest.json")
	require.NoError(t, err)
	got, err := dist.ReadFile("dist/manifest.json")
	require.NoError(t, err)
	require.JSONEq(t, string(want), string(got), "internal/webapp/dist is stale: run hack/deps/webapp.sh")
}

func TestIsRoute(t *testing.T) {
	for path, want := range map[string]bool{
		"/": true, "/search": true, "/artist/x": true, "/artist/": false, "/artist": false,
		"/admin": true, "/admin/x/y": true, "/adminx": false, "/v1/search": false, "/assets/x.js": false, "": false,
	} {
		require.Equal(t, want, IsRoute(path), path)
	}
}

func FuzzIsRoute(f *testing.F) {
	for _, s := range []string{"/", "/artist/1", "/v1/x", "/admin/", "//evil"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		if IsRoute(path) && !strings.HasPrefix(path, "/") {
			t.Fatalf("%q is not a path but is a route", path)
		}
		if IsRoute(path) && (strings.HasPrefix(path, "/v1/") || strings.HasPrefix(path, "/assets/")) {
			t.Fatalf("%q is an API or asset path but is a route", path)
		}
	})
}
