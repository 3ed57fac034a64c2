package edge

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
)

// Why this file exists: profiling the cache-hit path under load (64 KiB HLS
// segments, 64 keep-alive connections) showed most of the POP's CPU in the
// kernel's TCP send path, with two write(2) calls per response. net/http
// renders the status line and headers into a 4 KiB per-connection buffer;
// the first body Write fills that buffer, flushes it (write 1: headers plus
// the first ~3.8 KiB of body) and then writes the rest of the body directly
// (write 2). Each write is a separate push through TCP and loopback/NIC
// delivery. gatherConn lets the handler mark the body write of a cached
// slice so that the buffer flush is held back (copied, at most maxHeld
// bytes) and sent together with the next write in one writev(2). Nothing is
// ever held across a wait: the handler ends gathering right after the one
// Write call of bytes it already has, which flushes anything still held.

// maxHeld bounds a held write: net/http's connection buffer is 4 KiB.
const maxHeld = 8 << 10

// gatherListener wraps accepted connections in gatherConn.
type gatherListener struct{ net.Listener }

func (l gatherListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &gatherConn{Conn: c}, nil
}

// gatherConn is a server connection whose writes can be gathered (see the
// file comment). It is used by one goroutine at a time: net/http writes an
// HTTP/1 response only from the goroutine running the handler.
type gatherConn struct {
	net.Conn
	gathering bool
	held      []byte
	buf       []byte // reused backing array of held
}

type gatherKey struct{}

// withGatherConn is the http.Server ConnContext hook: it lets a handler find
// its connection's gatherConn.
func withGatherConn(ctx context.Context, c net.Conn) context.Context {
	if g, ok := c.(*gatherConn); ok {
		return context.WithValue(ctx, gatherKey{}, g)
	}
	return ctx
}

// gatherFrom returns the request's gatherConn, or nil when the handler runs
// behind another server (mounted on the gateway, in tests with recorders).
func gatherFrom(ctx context.Context) *gatherConn {
	g, _ := ctx.Value(gatherKey{}).(*gatherConn)
	return g
}

// begin starts gathering; a nil receiver does nothing.
func (c *gatherConn) begin() {
	if c != nil {
		c.gathering = true
	}
}

// end stops gathering and sends anything still held.
func (c *gatherConn) end() error {
	if c == nil {
		return nil
	}
	c.gathering = false
	return c.flushHeld()
}

func (c *gatherConn) flushHeld() error {
	if len(c.held) == 0 {
		return nil
	}
	held := c.held
	c.held = nil
	_, err := c.Conn.Write(held)
	return err
}

// Write sends p, or while gathering holds a small p back to go out with the
// next write in one writev.
func (c *gatherConn) Write(p []byte) (int, error) {
	if !c.gathering {
		return c.Conn.Write(p)
	}
	if len(c.held) == 0 {
		if len(p) > maxHeld {
			return c.Conn.Write(p)
		}
		if c.buf == nil {
			c.buf = make([]byte, 0, maxHeld)
		}
		c.held = append(c.buf[:0], p...)
		return len(p), nil
	}
	held := len(c.held)
	bufs := net.Buffers{c.held, p}
	c.held = nil
	n, err := bufs.WriteTo(c.Conn) // writev on a *net.TCPConn
	n -= int64(held)
	if n < 0 {
		n = 0
	}
	return int(n), err
}

// ReadFrom keeps net/http's sendfile path (it type-asserts io.ReaderFrom on
// the connection) and never lets held bytes be overtaken. A *fileBody is
// sent zero-copy (sendFile).
func (c *gatherConn) ReadFrom(r io.Reader) (int64, error) {
	if b, ok := r.(*fileBody); ok {
		if sc, ok := c.Conn.(syscall.Conn); ok {
			return c.sendFile(sc, b)
		}
	}
	if err := c.flushHeld(); err != nil {
		return 0, err
	}
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// CloseWrite half-closes like *net.TCPConn (net/http uses it for a clean
// close after an error response).
func (c *gatherConn) CloseWrite() error {
	if err := c.flushHeld(); err != nil {
		return err
	}
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// Close sends nothing held: a connection closed mid-gather is broken anyway.
// It touches no field of c: net/http closes a connection from other
// goroutines too (Server.Shutdown closing idle connections), while the
// serving goroutine may still be inside a write.
func (c *gatherConn) Close() error {
	return c.Conn.Close()
}

// fileBody is a byte range of an open disk-tier slice file. Its Read (pread)
// serves the first bytes net/http copies itself; gatherConn.ReadFrom sends
// the rest with sendfile(2) at an explicit offset, so one descriptor can
// serve any number of responses at once and the bytes go from the page
// cache to the socket without a copy through the POP's memory.
type fileBody struct {
	f    *os.File
	head []byte // f's first bytes, read when it was opened
	off  int64  // next byte of f to send
	n    int64  // bytes left
}

func (b *fileBody) Read(p []byte) (int, error) {
	if b.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	if b.off < int64(len(b.head)) {
		m := copy(p, b.head[b.off:])
		b.off += int64(m)
		b.n -= int64(m)
		return m, nil
	}
	m, err := b.f.ReadAt(p, b.off)
	b.off += int64(m)
	b.n -= int64(m)
	if m == len(p) {
		err = nil
	} else if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF // the slice file is shorter than its index entry
	}
	return m, err
}

// sendFile sends what is held with MSG_MORE (so it shares a TCP segment
// with the first file bytes instead of being pushed alone) and then b's
// bytes with sendfile(2).
func (c *gatherConn) sendFile(sc syscall.Conn, b *fileBody) (int64, error) {
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, err
	}
	var werr error
	if held := c.held; len(held) > 0 {
		c.held = nil
		err := rc.Write(func(fd uintptr) bool {
			for len(held) > 0 {
				n, err := syscall.SendmsgN(int(fd), held, nil, nil, syscall.MSG_MORE)
				switch {
				case errors.Is(err, syscall.EAGAIN):
					return false // wait until writable
				case errors.Is(err, syscall.EINTR):
				case err != nil:
					werr = err
					return true
				default:
					held = held[n:]
				}
			}
			return true
		})
		if err == nil {
			err = werr
		}
		if err != nil {
			return 0, err
		}
	}
	fc, err := b.f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var sent int64
	ran := false
	err = fc.Read(func(ffd uintptr) bool {
		ran = true
		err := rc.Write(func(cfd uintptr) bool {
			for b.n > 0 {
				n, err := syscall.Sendfile(int(cfd), int(ffd), &b.off, int(min(b.n, 1<<30)))
				if n > 0 {
					sent += int64(n)
					b.n -= int64(n)
				}
				switch {
				case errors.Is(err, syscall.EAGAIN):
					return false
				case errors.Is(err, syscall.EINTR):
				case err != nil:
					werr = err
					return true
				case n == 0:
					werr = io.ErrUnexpectedEOF // file shorter than expected
					return true
				}
			}
			return true
		})
		if werr == nil {
			werr = err
		}
		return true
	})
	if !ran && err != nil {
		return 0, os.ErrClosed // closed by a purge or an eviction: the caller copies instead
	}
	if err == nil {
		err = werr
	}
	return sent, err
}
