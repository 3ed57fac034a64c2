package edge

import (
	"bytes"
	"io"
	"net"
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
			errc := make(chan error, 1)
			go func() {
				err := tc.write(sc)
				if len(sc.held) != 0 {
					t.Errorf("%d bytes still held after end", len(sc.held))
				}
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
			if !bytes.Equal(got, tc.want) {
				t.Fatalf("peer got %d bytes, want %d (equal prefix: %v)", len(got), len(tc.want), bytes.HasPrefix(tc.want, got))
			}
		})
	}
}
