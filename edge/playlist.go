package edge

import (
	"bytes"
	"net/http"
	"path"
	"strconv"
	"strings"

	"github.com/overture-music/overture/edge/urlsign"
)

// Why playlists are rewritten: a signed URL's token travels in the query
// string, and an HLS playlist names its variants, init sections, segments and
// keys by relative URI. RFC 3986 resolution drops the base URL's query, so a
// player asks for every segment without the token; ffmpeg, hls.js, AVPlayer
// and ExoPlayer all do. The POP therefore rewrites every playlist it serves
// so each URI inside it carries the token of the request that fetched the
// playlist. The rewrite happens per response: the cache keeps the origin's
// bytes, shared by every listener, and the rewritten response is
// Cache-Control: private, no-store, so neither a browser nor a shared cache
// downstream hands one listener's token to another.

// rewriteCC marks a playlist rewritten for one listener's token.
const rewriteCC = "private, no-store"

// playlistRewriter rewrites the URIs of one playlist for one token.
type playlistRewriter struct {
	s   *Server
	dir string // the playlist's directory, "" or ending in "/"
	tok urlsign.Token
	raw string // the token as it appeared in the request
}

// rewritePlaylist returns body with every URI that resolves under the
// token's prefix carrying the token. For a listener without premium, master
// playlist entries (variant streams, alternative renditions) of premium
// renditions are left out, so a player never tries a variant it may not
// open. URIs outside the prefix (another track, another host) are left as
// they are: the token must not travel to objects it does not cover.
func (s *Server) rewritePlaylist(key string, body []byte, tok urlsign.Token, raw string) []byte {
	rw := playlistRewriter{s: s, tok: tok, raw: raw}
	if d := path.Dir(key); d != "." {
		rw.dir = d + "/"
	}
	lines := strings.Split(string(body), "\n")
	out := make([]byte, 0, len(body)+len(body)/2)
	for i := 0; i < len(lines); i++ {
		line := strings.TrimSuffix(lines[i], "\r")
		t := strings.TrimSpace(line)
		switch {
		case t == "":
			out = append(out, line...)
		case strings.HasPrefix(t, "#EXT-X-STREAM-INF"):
			// The variant's URI is the next line that is not a tag or blank.
			j := i + 1
			for j < len(lines) && (strings.TrimSpace(lines[j]) == "" || strings.HasPrefix(strings.TrimSpace(lines[j]), "#")) {
				j++
			}
			if j < len(lines) {
				if _, premium, _ := rw.ref(strings.TrimSpace(strings.TrimSuffix(lines[j], "\r"))); premium && !tok.ListenerPremium {
					i = j // leave out the tag and its URI
					continue
				}
			}
			out = append(out, rw.attrURI(line)...)
		case strings.HasPrefix(t, "#"):
			if u, ok := uriAttr(t); ok && (strings.HasPrefix(t, "#EXT-X-MEDIA:") || strings.HasPrefix(t, "#EXT-X-I-FRAME-STREAM-INF:")) {
				if _, premium, _ := rw.ref(u); premium && !tok.ListenerPremium {
					continue
				}
			}
			out = append(out, rw.attrURI(line)...)
		default:
			u, _, _ := rw.ref(t)
			out = append(out, u...)
		}
		if strings.HasSuffix(lines[i], "\r") {
			out = append(out, '\r')
		}
		if i < len(lines)-1 {
			out = append(out, '\n')
		}
	}
	return out
}

// uriAttr returns the URI="…" attribute of a tag line.
func uriAttr(line string) (string, bool) {
	i := strings.Index(line, `URI="`)
	if i < 0 {
		return "", false
	}
	rest := line[i+len(`URI="`):]
	j := strings.IndexByte(rest, '"')
	if j < 0 {
		return "", false
	}
	return rest[:j], true
}

// attrURI rewrites the URI="…" attribute of a tag line (EXT-X-MAP,
// EXT-X-KEY, EXT-X-MEDIA, EXT-X-I-FRAME-STREAM-INF, EXT-X-SESSION-KEY, …).
func (rw playlistRewriter) attrURI(line string) string {
	i := strings.Index(line, `URI="`)
	if i < 0 {
		return line
	}
	start := i + len(`URI="`)
	j := strings.IndexByte(line[start:], '"')
	if j < 0 {
		return line
	}
	u, _, _ := rw.ref(line[start : start+j])
	return line[:start] + u + line[start+j:]
}

// ref resolves a playlist URI and returns it with the token added when it
// names an object under the token's prefix (ours), and whether that object
// is premium.
func (rw playlistRewriter) ref(u string) (out string, premium, ours bool) {
	if u == "" {
		return u, false, false
	}
	p, frag, _ := strings.Cut(u, "#")
	p, query, _ := strings.Cut(p, "?")
	var key string
	switch {
	case strings.HasPrefix(p, MediaPrefix):
		key = p[len(MediaPrefix):]
	case strings.HasPrefix(p, "/") || hasScheme(p):
		return u, false, false // another host, or outside the media space
	default:
		key = path.Join(rw.dir, p)
	}
	if !validKey(key) || !strings.HasPrefix(key, rw.tok.Prefix) {
		return u, false, false
	}
	premium = rw.tok.NeedsPremium(key) || rw.s.premiumKey(key)
	var b strings.Builder
	b.Grow(len(u) + len(rw.raw) + 3)
	b.WriteString(p)
	sep := byte('?')
	for query != "" {
		var kv string
		kv, query, _ = strings.Cut(query, "&")
		if k, _, _ := strings.Cut(kv, "="); k == urlsign.Param || kv == "" {
			continue // a token already in the URI is replaced
		}
		b.WriteByte(sep)
		b.WriteString(kv)
		sep = '&'
	}
	b.WriteByte(sep)
	b.WriteString(urlsign.Param + "=")
	b.WriteString(rw.raw)
	if frag != "" {
		b.WriteByte('#')
		b.WriteString(frag)
	}
	return b.String(), premium, true
}

// hasScheme reports whether u starts with a URI scheme ("https:", "skd:",
// "data:").
func hasScheme(u string) bool {
	for i := 0; i < len(u); i++ {
		c := u[i]
		switch {
		case c == ':':
			return i > 0
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return false
}

// servePlaylist answers a playlist rewritten for the request's token. The
// playlist is read whole (it is small, and the memory tier keeps it); Range
// and conditional requests are not honoured on a rewritten playlist, whose
// bytes differ per token.
func (s *Server) servePlaylist(w http.ResponseWriter, r *http.Request, info objectInfo, state cacheState, tok urlsign.Token, raw string) {
	ctx := r.Context()
	var buf bytes.Buffer
	buf.Grow(int(info.Size))
	for i := int64(0); i < s.store.slices(info.Size); i++ {
		b, err := s.slice(ctx, info, i)
		if err != nil {
			s.originProblem(w, r, info.Key, err)
			return
		}
		buf.Write(b)
	}
	body := s.rewritePlaylist(info.Key, buf.Bytes(), tok, raw)
	s.count(state)
	h := w.Header()
	h["Content-Type"] = []string{contentType(info.Key, info.ContentType)}
	h["Cache-Control"] = []string{rewriteCC}
	h["X-Cache"] = hdrCache[state]
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	if info.Tag != "" {
		h["Surrogate-Key"] = []string{info.Tag}
	}
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	n, _ := w.Write(body)
	s.st.bytesOut.Add(int64(n))
}
