package steering

import (
	"context"
	"io"
	"net"
	"testing"
	"time"
)

// slowProxy forwards TCP to target, delaying every chunk from the client by d:
// real, measurable latency on loopback without tc netem.
func slowProxy(t *testing.T, target string, d time.Duration) string {
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
			go func() {
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
						time.Sleep(d)
						if _, werr := u.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// Measured RTT counts: the listener's own region is configured as nearest,
// but its POP is 40 ms away in practice, so the neighbour region wins.
func TestMeasuredLatencyOutweighsConfiguredProximity(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "", func(c *Config) { c.Latency = map[string]float64{"eu-west>eu-central": 20} },
		POP{Name: "home", Region: "eu-west"}, POP{Name: "next", Region: "eu-central"})
	// Re-point "home" through a 40 ms proxy.
	f.svc.pops[0].URL = "http://" + slowProxy(t, f.pops["home"].Addr(), 40*time.Millisecond)
	for range 4 {
		f.svc.Poll(context.Background())
	}
	pops, ch := f.svc.HealthMap()
	if pops[0].RTTMS < 35 || pops[1].RTTMS > 20 {
		t.Fatalf("measured RTTs: home %.1f ms, next %.1f ms", pops[0].RTTMS, pops[1].RTTMS)
	}
	if ch["eu-west"] != "eu-central" {
		t.Fatalf("eu-west listeners go to %q; 20 ms configured + ~0 measured should beat 0 + 40 ms", ch["eu-west"])
	}
}
