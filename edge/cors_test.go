package edge

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// A web player on another origin may read everything /media/ answers
// (rewritten playlists, segments, ranges, problems) and gets its Range
// preflight answered; hls.js in Chromium needs this (internal/steering
// TestPlaybackWithHLSJS).
func TestMediaAnswersAllowCrossOriginPlayers(t *testing.T) {
	t.Parallel()
	o := newTestOrigin(t)
	o.put(t, "tracks/c1/v1/aac64/index.m3u8", []byte("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\nseg1.m4s\n#EXT-X-ENDLIST\n"))
	o.put(t, "tracks/c1/v1/aac64/seg1.m4s", []byte(strings.Repeat("a", 1000)))
	s := startEdge(t, o, nil)

	get := func(u string, hdr ...string) *http.Response {
		t.Helper()
		req, err := http.NewRequest("GET", u, nil)
		require.NoError(t, err)
		req.Header.Set("Origin", "http://app.example")
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		r, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, r.Body)
		r.Body.Close()
		return r
	}
	cors := func(r *http.Response, what string) {
		t.Helper()
		require.Equal(t, "*", r.Header.Get("Access-Control-Allow-Origin"), what)
		expose := r.Header.Get("Access-Control-Expose-Headers")
		for _, h := range []string{"Content-Range", "Accept-Ranges", "ETag", "X-Cache"} {
			require.Contains(t, expose, h, what)
		}
	}
	playlist := signed(t, s, "tracks/c1/v1/aac64/index.m3u8", "tracks/c1/", nil)
	segment := signed(t, s, "tracks/c1/v1/aac64/seg1.m4s", "tracks/c1/", nil)

	r := get(playlist)
	require.Equal(t, 200, r.StatusCode)
	cors(r, "rewritten playlist")
	r = get(segment)
	require.Equal(t, 200, r.StatusCode)
	cors(r, "segment")
	r = get(segment, "Range", "bytes=0-99")
	require.Equal(t, 206, r.StatusCode)
	require.Equal(t, "bytes 0-99/1000", r.Header.Get("Content-Range"))
	cors(r, "range")
	r = get(segment + "x") // a broken token: the player may read the problem
	require.Equal(t, 403, r.StatusCode)
	cors(r, "problem")

	req, _ := http.NewRequest("OPTIONS", segment, nil)
	req.Header.Set("Origin", "http://app.example")
	req.Header.Set("Access-Control-Request-Method", "GET")
	req.Header.Set("Access-Control-Request-Headers", "range,if-none-match")
	r, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	r.Body.Close()
	require.Equal(t, http.StatusNoContent, r.StatusCode)
	require.Equal(t, "*", r.Header.Get("Access-Control-Allow-Origin"))
	require.Contains(t, r.Header.Get("Access-Control-Allow-Methods"), "GET")
	for _, h := range []string{"Range", "If-None-Match", "If-Range", "Authorization"} {
		require.Contains(t, r.Header.Get("Access-Control-Allow-Headers"), h)
	}
	// Only /media/ is cross-origin: the admin routes answer no preflight.
	req, _ = http.NewRequest("OPTIONS", s.URL()+"/admin/purge", nil)
	req.Header.Set("Origin", "http://app.example")
	r, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	r.Body.Close()
	require.Equal(t, http.StatusMethodNotAllowed, r.StatusCode)
	require.Empty(t, r.Header.Get("Access-Control-Allow-Origin"))
}
