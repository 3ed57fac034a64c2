package edge

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
)

// tcpPair returns a gathered server side and the raw client side of one
// loopback TCP connection.
func tcpPair(t *testing.T) (*gatherConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	acc := make(chan net.Conn, 1)
	go func() {
		c, err := gatherListener{ln}.Accept()
		if err != nil {
			acc <- nil
			return
		}
		acc <- c
	}()
	cl, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sc := <-acc
	if sc == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { _ = cl.Close(); _ = sc.Close() })
	return sc.(*gatherConn), cl
}

// received runs write on the gathered side sc in a goroutine, then half-closes
// sc, and returns every byte the peer cl read; an error from write or the
// half-close fails the test.
func received(t *testing.T, sc *gatherConn, cl net.Conn, write func() error) []byte {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		err := write()
		if cerr := sc.CloseWrite(); err == nil {
			err = cerr
		}
		errc <- err
	}()
	got, err := io.ReadAll(cl)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return got
}

// Whatever is gathered, the peer receives exactly the bytes written, in
// order, and nothing stays held after end.
func TestGatherConnKeepsBytesAndOrder(t *testing.T) {
	t.Parallel()
	big := randBytes(300 << 10)
	cases := []struct {
		name  string
		write func(c *gatherConn) error
		want  []byte
	}{
		{"held then large write goes out as one writev", func(c *gatherConn) error {
			c.begin()
			if _, err := c.Write([]byte("head|")); err != nil {
				return err
			}
			if _, err := c.Write(big); err != nil {
				return err
			}
			return c.end()
		}, append([]byte("head|"), big...)},
		{"held write alone is sent by end", func(c *gatherConn) error {
			c.begin()
			if _, err := c.Write([]byte("only")); err != nil {
				return err
			}
			return c.end()
		}, []byte("only")},
		{"large first write is not held", func(c *gatherConn) error {
			c.begin()
			if _, err := c.Write(big[:maxHeld+1]); err != nil {
				return err
			}
			if _, err := c.Write([]byte("tail")); err != nil {
				return err
			}
			return c.end()
		}, append(append([]byte{}, big[:maxHeld+1]...), "tail"...)},
		{"ReadFrom sends held bytes first", func(c *gatherConn) error {
			c.begin()
			if _, err := c.Write([]byte("hdr|")); err != nil {
				return err
			}
			if _, err := c.ReadFrom(bytes.NewReader(big[:70000])); err != nil {
				return err
			}
			return c.end()
		}, append([]byte("hdr|"), big[:70000]...)},
		{"not gathering passes writes through", func(c *gatherConn) error {
			_, err := c.Write([]byte("plain"))
			return err
		}, []byte("plain")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sc, cl := tcpPair(t)
			got := received(t, sc, cl, func() error {
				err := tc.write(sc)
				if len(sc.held) != 0 {
					t.Errorf("%d bytes still held after end", len(sc.held))
				}
				return err
			})
			if !bytes.Equal(got, tc.want) {
				t.Fatalf("peer got %d bytes, want %d (equal prefix: %v)", len(got), len(tc.want), bytes.HasPrefix(tc.want, got))
			}
		})
	}
}

// Hits sent zero-copy from disk-tier files follow purges: after a purge and
// a refill with new bytes (also of the same size, so only the file's
// identity tells the versions apart) the POP serves the new bytes and
// validators, never a descriptor of the old file.
func TestZeroCopyHitsFollowPurgeAndRefill(t *testing.T) {
	t.Parallel()
	o := newTestOrigin(t)
	s := startEdge(t, o, func(c *Config) { c.DiskDir = t.TempDir() })
	key := "tracks/t11/hls/seg-1.ts"
	u := signed(t, s, key, "tracks/t11/", nil)
	purge := func() {
		req, _ := http.NewRequest("POST", s.URL()+"/admin/purge", strings.NewReader(`{"keys":["`+key+`"]}`))
		req.Header.Set(AdminSecretHeader, "admin-secret")
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != 200 {
			t.Fatalf("purge: %d", r.StatusCode)
		}
	}
	var lastETag string
	for i, body := range [][]byte{randBytes(40 << 10), randBytes(40 << 10), randBytes(64 << 10)} {
		o.put(t, key, body)
		if i > 0 {
			purge()
		}
		for j := range 3 {
			r := do(t, "GET", u, nil)
			if r.status != 200 || !bytes.Equal(r.body, body) {
				t.Fatalf("version %d, GET %d: %d, %d bytes (want %d)", i, j, r.status, len(r.body), len(body))
			}
			if j == 0 {
				waitIdle(t, s) // the fetch has filled both tiers
			} else if r.header.Get("X-Cache") != "HIT" {
				t.Fatalf("version %d, GET %d: X-Cache %s", i, j, r.header.Get("X-Cache"))
			}
			if r.header.Get("Content-Length") != fmt.Sprint(len(body)) || r.header.Get("ETag") == lastETag {
				t.Fatalf("version %d, GET %d: stale validators %v", i, j, r.header)
			}
			rg := do(t, "GET", u, map[string]string{"Range": "bytes=100-30099"})
			if rg.status != 206 || !bytes.Equal(rg.body, body[100:30100]) {
				t.Fatalf("version %d, range GET %d: %d, %d bytes", i, j, rg.status, len(rg.body))
			}
			// Two large parts: each is sent zero-copy after its buffered
			// part header.
			mr := do(t, "GET", u, map[string]string{"Range": "bytes=0-19999,20000-39999"})
			mt, params, _ := mime.ParseMediaType(mr.header.Get("Content-Type"))
			if mr.status != 206 || mt != "multipart/byteranges" {
				t.Fatalf("version %d, multi-range GET %d: %d %s", i, j, mr.status, mt)
			}
			parts := multipart.NewReader(bytes.NewReader(mr.body), params["boundary"])
			for k := range 2 {
				p, err := parts.NextPart()
				if err != nil {
					t.Fatalf("version %d, part %d: %v", i, k, err)
				}
				pb, _ := io.ReadAll(p)
				if !bytes.Equal(pb, body[k*20000:(k+1)*20000]) {
					t.Fatalf("version %d, part %d: wrong bytes (%d)", i, k, len(pb))
				}
			}
			if j == 2 {
				lastETag = r.header.Get("ETag")
			}
		}
	}
	s.store.disk.mu.Lock()
	open := len(s.store.disk.open)
	s.store.disk.mu.Unlock()
	if open != 1 {
		t.Fatalf("%d open slice files: the zero-copy path was not exercised", open)
	}
}

// sendFile sends the held bytes, then exactly the file range; a file closed
// meanwhile (purge, eviction) is reported as os.ErrClosed with nothing sent,
// which is the caller's cue to copy from memory instead.
func TestSendFileRangeAndClosedFile(t *testing.T) {
	t.Parallel()
	data := randBytes(200 << 10)
	path := t.TempDir() + "/slice"
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	sc, cl := tcpPair(t)
	got := received(t, sc, cl, func() error {
		sc.begin()
		_, _ = sc.Write([]byte("hdr|"))
		n, err := sc.ReadFrom(&fileBody{f: f, head: data[:headLen], off: 1000, n: 150 << 10})
		if err == nil && n != 150<<10 {
			err = fmt.Errorf("sent %d bytes", n)
		}
		if eerr := sc.end(); err == nil {
			err = eerr
		}
		return err
	})
	if want := append([]byte("hdr|"), data[1000:1000+150<<10]...); !bytes.Equal(got, want) {
		t.Fatalf("peer got %d bytes, want %d", len(got), len(want))
	}

	closed, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	_ = closed.Close()
	sc2, _ := tcpPair(t)
	n, err := sc2.ReadFrom(&fileBody{f: closed, off: 0, n: int64(len(data))})
	if n != 0 || !errors.Is(err, os.ErrClosed) {
		t.Fatalf("closed file: sent %d, error %v; want 0 and os.ErrClosed", n, err)
	}
}
