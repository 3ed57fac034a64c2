package server

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
)

// Why this file exists: a request with both Content-Length and
// Transfer-Encoding is the classic request-smuggling shape (RFC 9112 §6.3:
// it "ought to be handled as an error"). net/http honours Transfer-Encoding
// and deletes Content-Length from the parsed header, so a handler cannot tell
// such a request from a plain chunked one. Listener's connections therefore
// follow the HTTP/1.1 framing of what they read (header blocks, then a
// Content-Length or chunked body) and flag the connection when a header block
// carries both; Guard answers 400 and closes it. On anything the framer does
// not understand it stops looking and leaves the bytes to net/http.

// Listener wraps ln so that its connections are checked for ambiguous
// framing (see Guard). Serve wraps its listener itself.
func Listener(ln net.Listener) net.Listener {
	if _, ok := ln.(framingListener); ok {
		return ln
	}
	return framingListener{ln}
}

type framingListener struct{ net.Listener }

func (l framingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &framingConn{Conn: c, f: &framer{}}, nil
}

// framingConn is a server connection whose reads pass through a framer.
type framingConn struct {
	net.Conn
	f *framer
}

func (c *framingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.f.feed(p[:n])
	return n, err
}

// ReadFrom keeps the wrapped connection's sendfile/splice path (net/http
// type-asserts io.ReaderFrom on its connection).
func (c *framingConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// CloseWrite half-closes like *net.TCPConn (net/http uses it for a clean close).
func (c *framingConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// InnerConn returns the connection Listener wrapped, or c itself; a
// ConnContext hook that looks for its own connection type calls it.
func InnerConn(c net.Conn) net.Conn {
	if fc, ok := c.(*framingConn); ok {
		return fc.Conn
	}
	return c
}

type framingKey struct{}

// ConnContext is the http.Server hook that lets Guard see its connection's
// framing verdict (NewHTTPServer installs it).
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	if fc, ok := c.(*framingConn); ok {
		return context.WithValue(ctx, framingKey{}, fc.f)
	}
	return ctx
}

// smuggled reports whether r's connection sent a request with both framings.
func smuggled(r *http.Request) bool {
	f, _ := r.Context().Value(framingKey{}).(*framer)
	return f != nil && f.ambiguous.Load()
}

type frameState int

const (
	fHeaders   frameState = iota // reading a header block, line by line
	fBody                        // skipping a Content-Length body
	fChunkSize                   // reading a chunk-size line
	fChunkData                   // skipping chunk data
	fChunkEnd                    // reading the CRLF after chunk data
	fTrailer                     // reading trailer lines
	fOff                         // lost track: stop looking
)

// maxFrameLine bounds a buffered line; net/http refuses longer headers.
const maxFrameLine = MaxHeaderBytes + 4096

// framer follows the message boundaries of an HTTP/1.1 request stream. It is
// fed by the connection's reader only (one goroutine at a time); ambiguous is
// read by handlers.
type framer struct {
	ambiguous atomic.Bool

	state  frameState
	line   []byte
	remain int64 // bytes left in a body or chunk
	length int64 // the block's Content-Length
	seen   bool  // the request line of this block was read
	cl, te bool
}

func (f *framer) feed(p []byte) {
	for len(p) > 0 && f.state != fOff {
		switch f.state {
		case fBody, fChunkData:
			n := min(int64(len(p)), f.remain)
			p, f.remain = p[n:], f.remain-n
			if f.remain == 0 {
				if f.state == fBody {
					f.state = fHeaders
				} else {
					f.state = fChunkEnd
				}
			}
		default:
			i := bytes.IndexByte(p, '\n')
			if i < 0 {
				f.line = append(f.line, p...)
				if len(f.line) > maxFrameLine {
					f.state = fOff
				}
				return
			}
			f.line = append(f.line, p[:i]...)
			p = p[i+1:]
			f.onLine(bytes.TrimSuffix(f.line, []byte("\r")))
			f.line = f.line[:0]
		}
	}
}

func (f *framer) onLine(l []byte) {
	switch f.state {
	case fHeaders:
		if len(l) > 0 {
			if !f.seen {
				f.seen = true // the request line
				return
			}
			name, value, ok := bytes.Cut(l, []byte(":"))
			if !ok {
				return
			}
			name = bytes.TrimSpace(name)
			switch {
			case bytes.EqualFold(name, []byte("Content-Length")):
				n, err := strconv.ParseInt(string(bytes.TrimSpace(value)), 10, 64)
				if err != nil || n < 0 {
					f.state = fOff // net/http refuses it and closes
					return
				}
				f.cl, f.length = true, n
			case bytes.EqualFold(name, []byte("Transfer-Encoding")):
				f.te = true
			}
			return
		}
		if !f.seen {
			return // blank lines before a request line
		}
		f.endHeaders()
	case fChunkSize:
		size, _, _ := bytes.Cut(l, []byte(";"))
		n, err := strconv.ParseInt(string(bytes.TrimSpace(size)), 16, 64)
		switch {
		case err != nil || n < 0:
			f.state = fOff
		case n == 0:
			f.state = fTrailer
		default:
			f.state, f.remain = fChunkData, n
		}
	case fChunkEnd:
		f.state = fChunkSize
	case fTrailer:
		if len(l) == 0 {
			f.state = fHeaders
		}
	}
}

// endHeaders decides where the body of the block just read ends, the way
// net/http does: Transfer-Encoding wins over Content-Length.
func (f *framer) endHeaders() {
	cl, te := f.cl, f.te
	f.seen, f.cl, f.te = false, false, false
	if cl && te {
		f.ambiguous.Store(true)
	}
	if te {
		f.state = fChunkSize
		return
	}
	if cl && f.length > 0 {
		f.state, f.remain = fBody, f.length
	}
}
