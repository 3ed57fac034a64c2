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
	// dirOurs: dir lies under the token's prefix, so a plain relative URI
	// (no "..", ".", "//", scheme or leading "/") names an object the token
	// covers without resolving it (the fast path of every segment line).
	dirOurs bool
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
	rw.dirOurs = strings.HasPrefix(rw.dir, tok.Prefix)
	// Count the lines to size the output: each URI grows by the token.
	out := make([]byte, 0, len(body)+(bytes.Count(body, []byte{'\n'})+1)*(len(raw)+4))
	skipURI := false // the previous EXT-X-STREAM-INF was left out: so is its URI
	for rest := body; len(rest) > 0; {
		var line []byte
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i+1], rest[i+1:]
		} else {
			line, rest = rest, nil
		}
		content := bytes.TrimRight(line, "\r\n")
		eol := line[len(content):]
		t := string(bytes.TrimSpace(content))
		switch {
		case t == "":
			out = append(out, line...)
		case t[0] == '#':
			if strings.HasPrefix(t, "#EXT-X-STREAM-INF") {
				if !tok.ListenerPremium && rw.premiumVariant(rest) {
					skipURI = true
					continue
				}
			} else if u, ok := uriAttr(t); ok && !tok.ListenerPremium &&
				(strings.HasPrefix(t, "#EXT-X-MEDIA:") || strings.HasPrefix(t, "#EXT-X-I-FRAME-STREAM-INF:")) && rw.premium(u) {
				continue
			}
			out = rw.appendAttrURI(out, content)
			out = append(out, eol...)
		default:
			if skipURI {
				skipURI = false
				continue
			}
			out = rw.appendRef(out, t)
			out = append(out, eol...)
		}
	}
	return out
}

// premiumVariant reports whether the URI line following an
// EXT-X-STREAM-INF tag (the next line that is not blank or a tag) names a
// premium object.
func (rw playlistRewriter) premiumVariant(rest []byte) bool {
	for len(rest) > 0 {
		var line []byte
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			line, rest = rest, nil
		}
		if t := string(bytes.TrimSpace(line)); t != "" && t[0] != '#' {
			return rw.premium(t)
		}
	}
	return false
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

// appendAttrURI appends a tag line with its URI="…" attribute (EXT-X-MAP,
// EXT-X-KEY, EXT-X-MEDIA, EXT-X-I-FRAME-STREAM-INF, EXT-X-SESSION-KEY, …)
// rewritten.
func (rw playlistRewriter) appendAttrURI(out, line []byte) []byte {
	i := bytes.Index(line, []byte(`URI="`))
	if i < 0 {
		return append(out, line...)
	}
	start := i + len(`URI="`)
	j := bytes.IndexByte(line[start:], '"')
	if j < 0 {
		return append(out, line...)
	}
	out = append(out, line[:start]...)
	out = rw.appendRef(out, string(line[start:start+j]))
	return append(out, line[start+j:]...)
}

// plainRelative reports whether p is a relative path that resolves to
// dir+p as it is: no scheme, no leading "/", no empty, "." or ".." segment.
func plainRelative(p string) bool {
	if p == "" || p[0] == '/' || hasScheme(p) || strings.ContainsAny(p, "\x00\r\n\\") {
		return false
	}
	for rest := p; ; {
		seg, after, more := strings.Cut(rest, "/")
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
		if !more {
			return true
		}
		rest = after
	}
}

// resolve returns the object key a playlist URI names, and whether the
// token covers it.
func (rw playlistRewriter) resolve(u string) (string, bool) {
	p, _, _ := strings.Cut(u, "#")
	p, _, _ = strings.Cut(p, "?")
	var key string
	switch {
	case strings.HasPrefix(p, MediaPrefix):
		key = p[len(MediaPrefix):]
	case p == "" || strings.HasPrefix(p, "/") || hasScheme(p):
		return "", false // another host, or outside the media space
	default:
		key = path.Join(rw.dir, p)
	}
	return key, validKey(key) && strings.HasPrefix(key, rw.tok.Prefix)
}

// premium reports whether a playlist URI names a premium object under the
// token's prefix.
func (rw playlistRewriter) premium(u string) bool {
	key, ours := rw.resolve(u)
	return ours && (rw.tok.NeedsPremium(key) || rw.s.premiumKey(key))
}

// appendRef appends u, with the token added when it names an object under
// the token's prefix (an existing t parameter is replaced; other parameters
// and the fragment are kept).
func (rw playlistRewriter) appendRef(out []byte, u string) []byte {
	p, frag, hasFrag := strings.Cut(u, "#")
	p, query, _ := strings.Cut(p, "?")
	ours := rw.dirOurs && plainRelative(p)
	if !ours {
		_, ours = rw.resolve(u)
	}
	if !ours {
		return append(out, u...)
	}
	out = append(out, p...)
	sep := byte('?')
	for query != "" {
		var kv string
		kv, query, _ = strings.Cut(query, "&")
		if k, _, _ := strings.Cut(kv, "="); k == urlsign.Param || kv == "" {
			continue
		}
		out = append(out, sep)
		out = append(out, kv...)
		sep = '&'
	}
	out = append(out, sep)
	out = append(out, urlsign.Param+"="...)
	out = append(out, rw.raw...)
	if hasFrag {
		out = append(out, '#')
		out = append(out, frag...)
	}
	return out
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
	var whole []byte // the playlist: its one slice as cached, or the slices joined
	for i := int64(0); i < s.store.slices(info.Size); i++ {
		b, err := s.slice(ctx, info, i)
		if err != nil {
			s.originProblem(w, r, info.Key, err)
			return
		}
		if i == 0 {
			whole = b
		} else {
			whole = append(whole[:len(whole):len(whole)], b...)
		}
	}
	body := s.rewritePlaylist(info.Key, whole, tok, raw)
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
