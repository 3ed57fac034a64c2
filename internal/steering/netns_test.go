package steering

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/overture-music/overture/edge"
	"github.com/overture-music/overture/internal/token/tokentest"
)

// inNetns runs fn on an OS thread switched into network namespace ns. The
// thread stays locked and is discarded afterwards, so no other goroutine
// ever runs in the namespace; sockets fn creates stay in it.
func inNetns(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		f, err := os.Open("/var/run/netns/" + ns)
		if err != nil {
			errc <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns: %w", err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// A POP behind real kernel latency (tc netem in a network namespace) is
// measured as far, and steering prefers the near one.
func TestRealLatencyWithNetem(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root for ip netns and tc netem")
	}
	ns := fmt.Sprintf("ovcdn%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Skipf("ip netns not permitted here: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	if out, err := exec.Command("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Skipf("cannot bring up lo in a netns: %v: %s", err, out)
	}
	if out, err := exec.Command("ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "20ms").CombinedOutput(); err != nil {
		t.Skipf("tc netem unavailable (the kernel lacks sch_netem): %v: %s; the user-space delay proxy in package probe covers latency instead",
			err, strings.TrimSpace(string(out)))
	}
	var ln net.Listener
	if err := inNetns(ns, func() (err error) { ln, err = net.Listen("tcp", "127.0.0.1:0"); return err }); err != nil {
		t.Fatal(err)
	}
	far, err := edge.New(edge.Config{Name: "far", Region: "eu-central", S3Endpoint: "http://127.0.0.1:1", S3AccessKey: "x", S3SecretKey: "y", SigningKeys: keys})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: far}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close(); _ = far.Stop(context.Background()) })
	near := startPOP(t, "near", "eu-west", "")
	f := &fixture{clk: &clock{time.Now()}}
	cfg := Config{POPs: []POP{{Name: "far", Region: "eu-central", URL: "http://" + ln.Addr().String()}, {Name: "near", Region: "eu-west", URL: near.URL()}},
		Latency: map[string]float64{"eu-west>eu-central": 20}, Keys: keys, Verifier: tokentest.New(t).Verifier(), PollInterval: -1, Now: f.clk.now}
	svc, err := NewWithConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Dial the namespaced POP from inside the namespace.
	svc.client.Transport = &http.Transport{DisableKeepAlives: true, DialContext: func(ctx context.Context, network, addr string) (c net.Conn, err error) {
		if addr != ln.Addr().String() {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}
		err = inNetns(ns, func() (e error) { var d net.Dialer; c, e = d.DialContext(ctx, network, addr); return e })
		return c, err
	}}
	for range 5 {
		svc.Poll(context.Background())
	}
	pops, _ := svc.HealthMap()
	if pops[0].RTTMS < 35 {
		t.Fatalf("netem POP measured %.1f ms, want ≥ 40 ms (20 ms each way)", pops[0].RTTMS)
	}
	if got := svc.pick("eu-central", "trk", 1)[0].Name; got != "near" {
		t.Fatalf("eu-central listeners sent to %s; the measured 40 ms should outweigh the 20 ms configured latency to eu-west", got)
	}
}
