// Package steeringtest gives steering tests real network latency on
// loopback. Steering picks POPs by measured RTT and jitter, so its tests need
// POPs that are measurably slow or unsteady; tc netem needs privileges the
// tests do not have, so a TCP proxy in user space holds the bytes instead.
// Both the service's tests (package steering) and the client probe's tests
// (package probe) use it; it imports neither.
package steeringtest

import (
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"time"
)

// DelayProxy listens on a loopback port until the test ends and forwards
// every connection to target, holding each chunk the client sends for base
// plus a random extra delay below spread (none when spread is 0). Answers
// flow back undelayed, so a request-response exchange takes about one delay
// more. It returns the proxy's address.
func DelayProxy(t testing.TB, target string, base, spread time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go forward(c, target, base, spread)
		}
	}()
	return ln.Addr().String()
}

func forward(c net.Conn, target string, base, spread time.Duration) {
	defer c.Close()
	u, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	defer u.Close()
	go func() { _, _ = io.Copy(c, u) }()
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			d := base
			if spread > 0 {
				d += time.Duration(rand.Int64N(int64(spread)))
			}
			time.Sleep(d)
			if _, werr := u.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
