package webapp

import (
	"cmp"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/overture-music/overture/internal/problem"
	"github.com/overture-music/overture/internal/steering"
)

//go:embed all:dist
var dist embed.FS

// Cache-Control values: hashed assets never change under their name; the
// page must be revalidated so a release is seen at once.
const (
	CacheImmutable = "public, max-age=31536000, immutable"
	CacheNoCache   = "no-cache"
)

// Routes are the app's client-side routes: a path equal to one, or below
// one ending in "/", gets index.html. Kept in step with web/src/router.ts
// (TestRoutesMatchTheRouter).
var Routes = []string{
	"/", "/signin", "/signup", "/forgot-password", "/reset-password", "/confirm",
	"/search", "/artist/", "/album/", "/track/", "/genres", "/genre/", "/charts", "/history",
	"/queue", "/account", "/premium", "/admin", "/admin/",
}

// Handler serves the embedded app; requests it does not own go to next.
type Handler struct {
	next     http.Handler
	files    fs.FS
	manifest manifestFile
	csp      string
}

type manifestFile struct {
	Script string           `json:"script"`
	Style  string           `json:"style"`
	Files  map[string]int64 `json:"files"`
}

// ErrNotBuilt is returned when dist/ holds no build (a fresh clone before
// hack/deps/webapp.sh).
var ErrNotBuilt = errors.New("webapp: the web app is not built; run hack/deps/webapp.sh (make deps)")

// New reads CDN_POPS from cfg (the POP origins the page may load media
// from) and returns the handler in front of next. Without a build in dist/
// the app's routes answer a 503 problem naming the build step, and the
// rest of the platform works.
func New(cfg map[string]string, next http.Handler) (*Handler, error) {
	return newHandler(dist, cfg, next)
}

func newHandler(fsys fs.FS, cfg map[string]string, next http.Handler) (*Handler, error) {
	sub, err := fs.Sub(fsys, "dist")
	if err != nil {
		return nil, fmt.Errorf("webapp: %w", err)
	}
	h := &Handler{next: next, files: sub}
	var origins []string
	if s := cfg["CDN_POPS"]; s != "" {
		pops, err := steering.ParsePOPs(s)
		if err != nil {
			return nil, fmt.Errorf("webapp: CDN_POPS: %w", err)
		}
		for _, p := range pops {
			u, err := url.Parse(p.URL)
			if err != nil || u.Host == "" {
				return nil, fmt.Errorf("webapp: CDN_POPS: POP %s has no origin in %q", p.Name, p.URL)
			}
			origins = append(origins, u.Scheme+"://"+u.Host)
		}
	}
	// The admin console PUTs upload parts to the presigned URLs of the
	// ingest admin API, which name S3_PUBLIC_ENDPOINT (else S3_ENDPOINT).
	var storage []string
	if s := cmp.Or(cfg["S3_PUBLIC_ENDPOINT"], cfg["S3_ENDPOINT"]); s != "" {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("webapp: S3_PUBLIC_ENDPOINT/S3_ENDPOINT: %q is not an http(s) URL", s)
		}
		storage = append(storage, u.Scheme+"://"+u.Host)
	}
	h.csp = Policy(origins, storage...)
	raw, err := fs.ReadFile(sub, "manifest.json")
	if err == nil {
		if err := json.Unmarshal(raw, &h.manifest); err != nil {
			return nil, fmt.Errorf("webapp: dist/manifest.json: %w", err)
		}
	}
	return h, nil
}

// Built reports whether the embedded dist/ holds a build.
func (h *Handler) Built() bool { return h.manifest.Script != "" }

// Policy is the Content-Security-Policy of every answer: nothing inline,
// scripts and styles from this origin only, media, playlists and covers
// from the POPs too (MSE plays through blob: URLs), requests to the POPs
// and to the storage origins (the admin console's upload parts), no
// framing, forms submitted to this origin only.
func Policy(popOrigins []string, storageOrigins ...string) string {
	pops := strings.Join(popOrigins, " ")
	if pops != "" {
		pops = " " + pops
	}
	connect := pops
	for _, o := range storageOrigins {
		if !slices.Contains(popOrigins, o) {
			connect += " " + o
		}
	}
	return "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:" + pops +
		"; media-src 'self' blob:" + pops + "; connect-src 'self'" + connect +
		"; font-src 'self'; manifest-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
}

// IsRoute reports whether path is one of the app's pages.
func IsRoute(path string) bool {
	for _, r := range Routes {
		if r != "/" && strings.HasSuffix(r, "/") {
			// A prefix: /artist/{id}, never /artist/ alone.
			if strings.HasPrefix(path, r) && len(path) > len(r) {
				return true
			}
		} else if path == r {
			return true
		}
	}
	return false
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.next.ServeHTTP(w, r)
		return
	}
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, "/assets/"):
		h.asset(w, r, p)
	case IsRoute(p):
		h.page(w, r)
	default:
		h.next.ServeHTTP(w, r)
	}
}

func (h *Handler) page(w http.ResponseWriter, r *http.Request) {
	if !h.Built() {
		problem.Write(w, r, problem.New(http.StatusServiceUnavailable, "webapp-not-built", ErrNotBuilt.Error()))
		return
	}
	b, err := fs.ReadFile(h.files, "index.html")
	if err != nil {
		problem.Write(w, r, problem.New(http.StatusInternalServerError, "webapp-broken", "dist/index.html is missing from the build"))
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Security-Policy", h.csp)
	hdr.Set("Content-Type", "text/html; charset=utf-8")
	hdr.Set("Cache-Control", CacheNoCache)
	hdr.Set("Content-Length", strconv.Itoa(len(b)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(b)
}

func (h *Handler) asset(w http.ResponseWriter, r *http.Request, p string) {
	if _, ok := h.manifest.Files[p]; !ok {
		problem.Write(w, r, problem.New(http.StatusNotFound, "asset-not-found",
			fmt.Sprintf("no asset %s in this release (asset names change with every build; reload the page)", p)))
		return
	}
	f, err := h.files.Open(strings.TrimPrefix(p, "/"))
	if err != nil {
		problem.Write(w, r, problem.New(http.StatusNotFound, "asset-not-found", "no asset "+p))
		return
	}
	defer f.Close()
	hdr := w.Header()
	hdr.Set("Content-Security-Policy", h.csp)
	hdr.Set("Cache-Control", CacheImmutable)
	switch {
	case strings.HasSuffix(p, ".js"):
		hdr.Set("Content-Type", "text/javascript; charset=utf-8")
	case strings.HasSuffix(p, ".css"):
		hdr.Set("Content-Type", "text/css; charset=utf-8")
	}
	rs, ok := f.(io.ReadSeeker)
	if !ok {
		problem.Write(w, r, problem.New(http.StatusInternalServerError, "webapp-broken", "asset not seekable"))
		return
	}
	// The hashed name is the version: its ETag never changes.
	hdr.Set("ETag", `"`+strings.TrimPrefix(p, "/assets/")+`"`)
	http.ServeContent(w, r, "", time.Time{}, rs)
}
