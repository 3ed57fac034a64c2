package benchmark

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
)

// Output returns the file the driver writes its markdown section to, named
// by the environment variable env; without it the test is skipped, since a
// driver runs only from its script (a plain `go test` does not run it).
func Output(tb testing.TB, env, script string) string {
	tb.Helper()
	out := os.Getenv(env)
	if out == "" {
		tb.Skip("benchmark driver: run " + script)
	}
	return out
}

// Size returns the number in the environment variable env (Go integer
// syntax, as fmt.Sscan reads it), or def when it is unset or unreadable.
func Size(env string, def int) int {
	n := def
	if s := os.Getenv(env); s != "" {
		if _, err := fmt.Sscan(s, &n); err != nil {
			return def
		}
	}
	return n
}

// Machine describes the machine for a report: "2 cores (`GOMAXPROCS=2`),
// <CPU model>, <Go version>".
func Machine() string {
	return fmt.Sprintf("%d cores (`GOMAXPROCS=%d`), %s, %s", runtime.NumCPU(), runtime.GOMAXPROCS(0), cpuModel(), runtime.Version())
}

func cpuModel() string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				_, cpu, _ = strings.Cut(l, ": ")
				break
			}
		}
	}
	return strings.TrimSpace(cpu)
}

// Goal is a report's verdict on a goal: "met" or, in bold, "not met".
func Goal(met bool) string {
	if met {
		return "met"
	}
	return "**not met**"
}
