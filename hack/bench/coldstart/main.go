// Command coldstart measures exec-to-ready of a server binary: it starts the
// binary with LISTEN_ADDRESS on a free port, polls GET /health/readiness until
// it answers 200, records the elapsed time, stops the process, and repeats.
// It prints one markdown table row per binary measured (hack/bench/coldstart.sh
// runs it for `overture func noop` and for a minimal net/http server).
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	runs := flag.Int("n", 50, "runs per binary")
	label := flag.String("label", "", "row label")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: coldstart [-n RUNS] [-label L] BINARY [ARGS...]")
		os.Exit(2)
	}
	d, err := measure(flag.Args(), *runs)
	if err != nil {
		fmt.Fprintln(os.Stderr, "coldstart:", err)
		os.Exit(1)
	}
	slices.Sort(d)
	fmt.Printf("| %s | %d | %s | %s | %s | %s |\n", cmpOr(*label, strings.Join(flag.Args(), " ")), len(d),
		ms(pct(d, 50)), ms(pct(d, 90)), ms(pct(d, 99)), ms(d[0]))
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

func pct(sorted []time.Duration, p int) time.Duration {
	i := (len(sorted)*p + 99) / 100
	return sorted[max(0, min(len(sorted)-1, i-1))]
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func measure(argv []string, runs int) ([]time.Duration, error) {
	client := &http.Client{Timeout: 100 * time.Millisecond, Transport: &http.Transport{DisableKeepAlives: true}}
	var out []time.Duration
	for i := range runs {
		addr, err := freePort()
		if err != nil {
			return nil, err
		}
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = append(os.Environ(), "LISTEN_ADDRESS="+addr, "LOG_LEVEL=error")
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		start := time.Now()
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("start %s: %w", argv[0], err)
		}
		ready := false
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		for ctx.Err() == nil {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/health/readiness", nil)
			resp, err := client.Do(req)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					ready = true
					break
				}
			}
			time.Sleep(200 * time.Microsecond)
		}
		elapsed := time.Since(start)
		cancel()
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if !ready {
			return nil, fmt.Errorf("run %d: %s not ready within 10 s", i, argv[0])
		}
		out = append(out, elapsed)
	}
	return out, nil
}
