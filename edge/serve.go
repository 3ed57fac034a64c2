package edge

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/overture-music/overture/edge/urlsign"
	"github.com/overture-music/overture/internal/problem"
	"github.com/overture-music/overture/internal/server"
	"github.com/overture-music/overture/internal/token"
)

// Cache-Control of immutable objects (segments, whole files: a new encoding
// gets a new key) and of playlists (short, revalidated at the POP).
const (
	immutableCC = "public, max-age=31536000, immutable, stale-if-error=86400"
)

func playlistCC(ttl time.Duration) string {
	return fmt.Sprintf("public, max-age=%d, stale-if-error=3600", int(ttl.Seconds()))
}

var (
	hdrBytes     = []string{"bytes"}
	hdrImmutable = []string{immutableCC}
	hdrCache     = map[cacheState][]string{stateHit: {"HIT"}, stateMiss: {"MISS"}, stateStale: {"STALE"}}
)

// CORS on /media/: a web player on any origin (the web app is not served by
// the POPs) may read playlists, segments and problem answers. The signed
// token in the URL is the authority, not the page's origin, and nothing
// here rides on cookies, so any origin is allowed and no Vary is needed.
// Exposed: the response headers beyond the CORS-safelisted ones a player
// reads (ranges, validators, cache state).
var (
	hdrCORSOrigin = []string{"*"}
	hdrCORSExpose = []string{"Accept-Ranges, Content-Range, ETag, X-Cache"}
)

// serveMediaPreflight answers a CORS preflight for /media/: a player that
// sends Range (byte-range playlists, seeks in a whole file), a conditional
// request or a listener's bearer token asks first.
func (s *Server) serveMediaPreflight(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h["Access-Control-Allow-Origin"] = hdrCORSOrigin
	h.Set("Access-Control-Allow-Methods", "GET, HEAD")
	h.Set("Access-Control-Allow-Headers", "Authorization, If-Modified-Since, If-None-Match, If-Range, Range")
	h.Set("Access-Control-Max-Age", "7200") // Chromium's cap
	w.WriteHeader(http.StatusNoContent)
}

// queryParam returns the first value of name in a raw query without
// parsing the whole query into a map.
func queryParam(raw, name string) string {
	for raw != "" {
		var kv string
		kv, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(kv, "=")
		if k != name {
			continue
		}
		if strings.ContainsAny(v, "%+") {
			if u, err := url.QueryUnescape(v); err == nil {
				return u
			}
		}
		return v
	}
	return ""
}

// verifyToken checks a signed-URL token, remembering genuine tokens so a
// listener's later requests (every segment of a track) skip the HMAC; the
// per-request limits (expiry, prefix, address) are still applied each time.
func (s *Server) verifyToken(raw, key, ip string) (urlsign.Token, error) {
	now := s.cfg.Clock.Now()
	if t, ok := s.tokens.GetIfPresent(raw); ok {
		return t, t.Check(key, ip, now)
	}
	t, err := s.cfg.SigningKeys.Verify(raw, key, ip, now)
	if err == nil {
		s.tokens.Set(raw, t)
	}
	return t, err
}

func writeProblem(w http.ResponseWriter, r *http.Request, status int, slug, detail string) {
	problem.Write(w, r, problem.New(status, slug, detail))
}

// validKey refuses keys that could escape the bucket namespace or alias one
// object under several cache keys.
func validKey(k string) bool {
	if k == "" || len(k) > 1024 || strings.HasPrefix(k, "/") || strings.HasSuffix(k, "/") || strings.Contains(k, "//") {
		return false
	}
	for rest := k; ; { // the segments, without allocating a slice of them
		seg, after, more := strings.Cut(rest, "/")
		if seg == "." || seg == ".." {
			return false
		}
		if !more {
			break
		}
		rest = after
	}
	return !strings.ContainsAny(k, "\x00\r\n")
}

// clientIP is the listener's address, through trusted proxies (server.Guard).
func clientIP(r *http.Request) string { return server.ClientIP(r) }

func (s *Server) serveMedia(w http.ResponseWriter, r *http.Request) {
	s.st.requests.Add(1)
	h := w.Header()
	h["Access-Control-Allow-Origin"] = hdrCORSOrigin
	h["Access-Control-Expose-Headers"] = hdrCORSExpose
	key := r.PathValue("key")
	if !validKey(key) {
		writeProblem(w, r, http.StatusBadRequest, "bad-key", "the object key is empty, too long or contains . / .. segments")
		return
	}
	var tok urlsign.Token
	var rawTok string
	if len(s.cfg.SigningKeys) > 0 {
		var err error
		rawTok = queryParam(r.URL.RawQuery, urlsign.Param)
		tok, err = s.verifyToken(rawTok, key, clientIP(r))
		if err != nil {
			s.metrics.denied.WithLabelValues("signature").Inc()
			if errors.Is(err, urlsign.ErrExpired) {
				writeProblem(w, r, http.StatusGone, "url-expired", "the signed URL has expired; ask the steering service for a new one")
				return
			}
			writeProblem(w, r, http.StatusForbidden, "bad-signature", err.Error())
			return
		}
		if s.revoked(tok, key) {
			s.metrics.denied.WithLabelValues("revoked").Inc()
			writeProblem(w, r, http.StatusForbidden, "revoked", "this track was taken down after the URL was issued; ask the steering service again")
			return
		}
	}
	// A premium object (by the catalog's flag in the token, or a premium
	// marker in its key) opens for a token steering signed for a premium
	// listener; otherwise the listener's own access token must show premium.
	if (tok.NeedsPremium(key) || s.premiumKey(key)) && !tok.ListenerPremium {
		p := s.checkPremium(r)
		if p != nil && rawTok != "" && token.Bearer(r) == "" {
			p = problem.New(http.StatusForbidden, "premium-required", "this rendition needs premium, and the signed URL was issued for a listener without it")
		}
		if p != nil {
			s.metrics.denied.WithLabelValues("premium").Inc()
			problem.Write(w, r, p)
			return
		}
	}
	ctx := r.Context()
	info, state, err := s.object(ctx, key)
	if err != nil {
		s.originProblem(w, r, key, err)
		return
	}
	if rawTok != "" && isPlaylist(key) {
		s.servePlaylist(w, r, info, state, tok, rawTok)
		return
	}
	// Header values are precomputed per object (objectInfo.prepare) and set
	// with canonical keys directly: this is the hot path of every hit.
	h["Accept-Ranges"] = hdrBytes
	if info.ETag != "" {
		h["Etag"] = hv(info.vETag, info.ETag)
	}
	if info.hdrLastMod != "" {
		h["Last-Modified"] = hv(info.vLastMod, info.hdrLastMod)
	}
	if isPlaylist(key) {
		h["Cache-Control"] = []string{s.playlistCC}
	} else {
		h["Cache-Control"] = hdrImmutable
	}
	ctype := info.hdrType
	if ctype == "" {
		ctype = contentType(key, info.ContentType)
	}
	if info.Tag != "" {
		h["Surrogate-Key"] = hv(info.vTag, info.Tag)
	}
	if notModified(r, info) {
		s.count(state)
		h.Set("X-Cache", state.String())
		w.WriteHeader(http.StatusNotModified)
		return
	}
	var ranges []byteRange
	if rh := r.Header.Get("Range"); rh != "" && ifRangeHolds(r.Header.Get("If-Range"), info) {
		ranges, err = parseRange(rh, info.Size)
		if errors.Is(err, errRangeUnsatisfiable) {
			s.count(state)
			h.Set("Content-Range", fmt.Sprintf("bytes */%d", info.Size))
			writeProblem(w, r, http.StatusRequestedRangeNotSatisfiable, "range-not-satisfiable",
				fmt.Sprintf("no requested range starts inside the %d-byte object", info.Size))
			return
		}
		if err != nil {
			ranges = nil // invalid syntax: ignore Range, send everything
		}
	}
	whole := ranges == nil
	if whole {
		ranges = []byteRange{{0, info.Size}}
	}
	// Make sure the first bytes can come before committing a status, so a
	// cold miss on a dead origin is still a clean 502.
	if ranges[0].length > 0 && r.Method != http.MethodHead {
		first := sliceKey{key, ranges[0].start / s.cfg.SliceSize}
		if s.store.has(first) {
			// cached: nothing to wait for (and nothing read into memory here)
		} else if _, firstFlight := s.sliceSource(info, first.idx); firstFlight != nil {
			state = stateMiss
			if _, _, err := firstFlight.next(ctx, 0); err != nil {
				s.originProblem(w, r, key, err)
				return
			}
		}
	}
	s.count(state)
	h["X-Cache"] = hdrCache[state]
	switch {
	case whole:
		h["Content-Type"] = hv(info.vType, ctype)
		if info.hdrLength != "" {
			h["Content-Length"] = hv(info.vLength, info.hdrLength)
		} else {
			h["Content-Length"] = []string{strconv.FormatInt(info.Size, 10)}
		}
		w.WriteHeader(http.StatusOK)
	case len(ranges) == 1:
		rg := ranges[0]
		h.Set("Content-Type", ctype)
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", rg.start, rg.start+rg.length-1, info.Size))
		h.Set("Content-Length", strconv.FormatInt(rg.length, 10))
		w.WriteHeader(http.StatusPartialContent)
	default:
		s.serveMultipart(w, r, info, ranges, ctype)
		return
	}
	if r.Method == http.MethodHead {
		return
	}
	if err := s.writeRange(ctx, w, info, ranges[0]); err != nil {
		s.abort(key, err)
	}
}

func (s *Server) count(st cacheState) {
	switch st {
	case stateHit:
		s.st.hits.Add(1)
	case stateStale:
		s.st.hits.Add(1)
		s.st.stale.Add(1)
	default:
		s.st.miss.Add(1)
	}
	s.metrics.byState[st].Inc()
}

// abort cuts a response whose body could not be completed: the client sees a
// truncated transfer instead of silently wrong bytes.
func (s *Server) abort(key string, err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	s.log.Warn("response aborted mid-body", "key", key, "error", err)
	panic(http.ErrAbortHandler)
}

// zeroCopyMin is the smallest part of a slice sent with sendfile; below it
// a copy is cheaper than the extra system calls.
const zeroCopyMin = 16 << 10

// writeRange writes bytes of rg slice by slice, streaming slices that are
// still being fetched.
func (s *Server) writeRange(ctx context.Context, w http.ResponseWriter, info objectInfo, rg byteRange) error {
	S := s.cfg.SliceSize
	end := rg.start + rg.length // exclusive
	gather := gatherFrom(ctx)
	for off := rg.start; off < end; {
		idx := off / S
		if idx+1 < s.store.slices(info.Size) && end > (idx+1)*S {
			s.prefetch(info, idx+1)
		}
		lo := int(off - idx*S)
		hi := int(min(S, end-idx*S))
		// A slice that is a disk-tier file goes from the page cache to the
		// socket; its bytes never enter the POP's heap.
		if n, err := s.writeFile(ctx, w, gather, sliceKey{info.Key, idx}, lo, hi); err != nil {
			return err
		} else if n == hi-lo {
			off = idx*S + int64(hi)
			continue
		} else {
			lo += n // the file went away meanwhile: the rest from a cache tier or the origin
		}
		data, f := s.sliceSource(info, idx)
		for pos := lo; pos < hi; {
			view := data
			if f != nil {
				var fin bool
				var err error
				view, fin, err = f.next(ctx, pos)
				if err != nil {
					if errors.Is(err, errChanged) {
						s.store.purge(info.Key)
					}
					return err
				}
				if len(view) <= pos && fin {
					return fmt.Errorf("slice %d of %s is short (%d bytes)", idx, info.Key, len(view))
				}
			} else if len(view) < hi {
				return fmt.Errorf("slice %d of %s is short (%d bytes)", idx, info.Key, len(view))
			}
			stop := min(len(view), hi)
			// Bytes already in hand (a cached slice): let the connection send
			// the buffered headers with them in one writev (conn.go). Never
			// while streaming a fetch, so nothing waits behind the origin.
			var g *gatherConn
			if f == nil {
				g = gather
			}
			g.begin()
			n, err := w.Write(view[pos:stop])
			if gerr := g.end(); err == nil {
				err = gerr
			}
			s.st.bytesOut.Add(int64(n))
			if err != nil {
				return context.Canceled // the client went away
			}
			pos = stop
		}
		off = idx*S + int64(hi)
	}
	return nil
}

// writeFile sends bytes [lo, hi) of a slice that is a disk-tier file,
// zero-copy: through the POP's own connection with sendfile (conn.go), or,
// for small parts and mounted on another server, copied from the file
// through a small buffer. It returns how many bytes it sent: 0 when the
// slice is no disk-tier file, fewer than asked when the file was
// closed under it by a purge or an eviction. An error means the client went
// away.
func (s *Server) writeFile(ctx context.Context, w http.ResponseWriter, gather *gatherConn, k sliceKey, lo, hi int) (int, error) {
	if s.store.disk == nil || s.store.inMemory(k.key) {
		return 0, nil
	}
	file, ok := s.store.disk.file(k)
	if !ok || file.size < int64(hi) {
		return 0, nil
	}
	var n int64
	var err error
	if gather != nil && hi-lo >= zeroCopyMin {
		gather.begin()
		n, err = io.Copy(w, &fileBody{f: file.f, head: file.head, off: int64(lo), n: int64(hi - lo)})
		if gerr := gather.end(); err == nil {
			err = gerr
		}
	} else {
		// A small part (a copy is cheaper than sendfile's extra calls), or
		// behind another server: net/http copies from the file.
		n, err = io.Copy(w, io.NewSectionReader(file.f, int64(lo), int64(hi-lo)))
	}
	s.st.bytesOut.Add(n)
	if err == nil || errors.Is(err, os.ErrClosed) {
		return int(n), nil // all sent, or the rest from a cache tier or the origin
	}
	if ctx.Err() == nil && !isClientGone(err) {
		// A read error of the file, not of the client: the rest comes from
		// the origin; bytes already sent stay sent.
		return int(n), nil
	}
	return int(n), context.Canceled
}

// isClientGone reports whether a write error came from the listener's side.
func isClientGone(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, http.ErrHandlerTimeout)
}

func (s *Server) serveMultipart(w http.ResponseWriter, r *http.Request, info objectInfo, ranges []byteRange, ctype string) {
	var b [12]byte
	_, _ = rand.Read(b[:])
	boundary := hex.EncodeToString(b[:])
	parts := make([]string, len(ranges))
	length := int64(0)
	for i, rg := range ranges {
		parts[i] = fmt.Sprintf("\r\n--%s\r\nContent-Type: %s\r\nContent-Range: bytes %d-%d/%d\r\n\r\n", boundary, ctype, rg.start, rg.start+rg.length-1, info.Size)
		length += int64(len(parts[i])) + rg.length
	}
	closing := "\r\n--" + boundary + "--\r\n"
	length += int64(len(closing))
	h := w.Header()
	h.Set("Content-Type", "multipart/byteranges; boundary="+boundary)
	h.Set("Content-Length", strconv.FormatInt(length, 10))
	w.WriteHeader(http.StatusPartialContent)
	if r.Method == http.MethodHead {
		return
	}
	for i, rg := range ranges {
		if _, err := w.Write([]byte(parts[i])); err != nil {
			return
		}
		if err := s.writeRange(r.Context(), w, info, rg); err != nil {
			s.abort(info.Key, err)
		}
	}
	_, _ = w.Write([]byte(closing))
}

// originProblem answers a request the POP could not serve from cache.
func (s *Server) originProblem(w http.ResponseWriter, r *http.Request, key string, err error) {
	switch {
	case errors.Is(err, ErrNotFound):
		writeProblem(w, r, http.StatusNotFound, "not-found", "no object "+key+" at the origin")
	case errors.Is(err, ErrOriginTimeout):
		writeProblem(w, r, http.StatusGatewayTimeout, "origin-timeout", "the origin did not answer in time and this POP has no cached copy of "+key)
	case errors.Is(err, context.Canceled):
		return
	default:
		s.log.Warn("origin fetch failed", "key", key, "error", err)
		writeProblem(w, r, http.StatusBadGateway, "origin-unavailable", "the origin is unreachable and this POP has no cached copy of "+key)
	}
}

func contentType(key, origin string) string {
	switch path.Ext(key) {
	case ".m3u8":
		return "application/vnd.apple.mpegurl"
	case ".ts":
		return "video/mp2t"
	case ".m4s", ".m4a", ".mp4":
		return "audio/mp4"
	case ".aac":
		return "audio/aac"
	case ".mp3":
		return "audio/mpeg"
	case ".flac":
		return "audio/flac"
	case ".ogg", ".opus":
		return "audio/ogg"
	}
	if origin != "" && origin != "binary/octet-stream" {
		return origin
	}
	if t := mime.TypeByExtension(path.Ext(key)); t != "" {
		return t
	}
	return "application/octet-stream"
}

// etagMatch compares entity tags; weak comparison unless strong.
func etagMatch(list, etag string, strong bool) bool {
	if etag == "" {
		return false
	}
	for _, t := range strings.Split(list, ",") {
		t = strings.TrimSpace(t)
		if t == "*" && !strong {
			return true
		}
		if strong {
			if t == etag && !strings.HasPrefix(t, "W/") {
				return true
			}
			continue
		}
		if strings.TrimPrefix(t, "W/") == strings.TrimPrefix(etag, "W/") {
			return true
		}
	}
	return false
}

// notModified evaluates If-None-Match, else If-Modified-Since (RFC 9110 §13.2.2).
func notModified(r *http.Request, info objectInfo) bool {
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		return etagMatch(inm, info.ETag, false)
	}
	if ims := r.Header.Get("If-Modified-Since"); ims != "" && !info.LastModified.IsZero() {
		t, err := http.ParseTime(ims)
		return err == nil && !info.LastModified.After(t)
	}
	return false
}

// ifRangeHolds reports whether a Range may be honoured: no If-Range, or its
// validator (strong ETag or exact Last-Modified date) still matches.
func ifRangeHolds(ir string, info objectInfo) bool {
	ir = strings.TrimSpace(ir)
	if ir == "" {
		return true
	}
	if strings.HasPrefix(ir, `"`) || strings.HasPrefix(ir, "W/") {
		return etagMatch(ir, info.ETag, true)
	}
	t, err := http.ParseTime(ir)
	return err == nil && !info.LastModified.IsZero() && t.Equal(info.LastModified)
}

func (s *Server) premiumKey(key string) bool {
	for _, m := range s.cfg.PremiumMarkers {
		// m occurs in "/"+key (without building that string on every
		// request): inside key, or at its start when m begins with "/".
		if m != "" && (strings.Contains(key, m) || (m[0] == '/' && strings.HasPrefix(key, m[1:]))) {
			return true
		}
	}
	return false
}

// entitlement is what the auth service writes to auth:entitlement:<user>.
type entitlement struct {
	Version      int64           `json:"version"`
	Premium      bool            `json:"premium"`
	PremiumUntil json.RawMessage `json:"premium_until"`
}

func (e entitlement) until() (time.Time, bool) {
	raw := strings.TrimSpace(string(e.PremiumUntil))
	if raw == "" || raw == "null" {
		return time.Time{}, false
	}
	var secs float64
	if json.Unmarshal(e.PremiumUntil, &secs) == nil {
		return time.Unix(int64(secs), 0), true
	}
	var str string
	if json.Unmarshal(e.PremiumUntil, &str) == nil {
		if t, err := time.Parse(time.RFC3339Nano, str); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// checkPremium demands a listener access token carrying the premium
// entitlement; a newer entitlement version in Redis overrides the claim.
func (s *Server) checkPremium(r *http.Request) *problem.Problem {
	if s.cfg.Verifier == nil {
		return problem.New(http.StatusForbidden, "premium-required", "this POP cannot verify access tokens, so it serves no premium renditions")
	}
	c, err := s.cfg.Verifier.Verify(r.Context(), token.Bearer(r))
	if err != nil {
		return problem.New(http.StatusUnauthorized, "invalid-token", "premium renditions need a valid access token: "+err.Error())
	}
	now := s.cfg.Clock.Now()
	premium := c.IsPremium(now)
	if s.redis != nil {
		b, err := s.redis.Get(r.Context(), "auth:entitlement:"+c.Subject).Bytes()
		if err == nil {
			var e entitlement
			if json.Unmarshal(b, &e) == nil && e.Version > c.EntitlementVersion {
				u, has := e.until()
				premium = e.Premium && (!has || now.Before(u))
			}
		} else if !errors.Is(err, errRedisNil) {
			s.log.Warn("entitlement lookup failed; trusting the token claim", "error", err)
		}
	}
	if !premium {
		return problem.New(http.StatusForbidden, "premium-required", "this rendition needs an active premium subscription")
	}
	return nil
}
