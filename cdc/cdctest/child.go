// Package cdctest runs the CDC relay in a child process of a test binary.
// Crash tests need CDC in a process of its own so that they can SIGKILL it
// mid-stream, as a node failure would; re-executing the test binary is the
// cheapest way to get one. Both cdc's own crash test and the search chaos
// test start their CDC children through this package, so the child's
// environment contract lives in one place.
package cdctest

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"syscall"

	"github.com/overture-music/overture/cdc"
	"github.com/overture-music/overture/internal/function"
	"github.com/overture-music/overture/internal/identity"
	"github.com/overture-music/overture/internal/telemetry"
)

// The environment of a CDC child.
const (
	childEnv     = "OVERTURE_CDC_CHILD" // set (to "1"): the process is a CDC child
	databaseEnv  = "OVERTURE_CDC_CHILD_DATABASE_URL"
	slotEnv      = "OVERTURE_CDC_CHILD_SLOT"
	sinkEnv      = "OVERTURE_CDC_CHILD_SINK"
	tokenEnv     = "OVERTURE_CDC_CHILD_TOKEN_FILE"
	batchSizeEnv = "OVERTURE_CDC_CHILD_BATCH_SIZE"
	profileEnv   = "OVERTURE_CDC_CHILD_CPUPROFILE"
)

// Child describes the CDC relay a child process runs.
type Child struct {
	DatabaseURL string
	Slot        string // also the publication's name
	Sink        string // where events are POSTed (function.HTTPPublisher), as K_SINK
	// TokenFile holds CDC's identity token (OVERTURE_IDENTITY_TOKEN_FILE):
	// a sink that checks sender identity, as the broker does, needs it.
	TokenFile string
	BatchSize int // events per publish; 0: cdc's default
	// CPUProfileDir, when set, makes each child profile itself into
	// <dir>/cdc-<pid>.pprof; only one that is stopped (not killed) writes a
	// complete file.
	CPUProfileDir string
}

// Env returns the variables that make the test binary, re-executed with
// them added to its environment, run this relay instead of its tests (the
// package's TestMain must call RunIfChild first).
func (c Child) Env() []string {
	return []string{
		childEnv + "=1",
		databaseEnv + "=" + c.DatabaseURL,
		slotEnv + "=" + c.Slot,
		sinkEnv + "=" + c.Sink,
		tokenEnv + "=" + c.TokenFile,
		batchSizeEnv + "=" + strconv.Itoa(c.BatchSize),
		profileEnv + "=" + c.CPUProfileDir,
	}
}

// RunIfChild returns at once in a test process. In a process started with a
// Child's Env it runs cdc.Run until SIGTERM or an interrupt and exits: 0 after
// a graceful stop, 1 when the relay failed. Call it first in TestMain.
func RunIfChild() {
	if os.Getenv(childEnv) == "" {
		return
	}
	if err := runChild(); err != nil {
		fmt.Fprintln(os.Stderr, "cdc child:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// runChild runs the relay of a child process until SIGTERM or an interrupt.
func runChild() error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if d := os.Getenv(profileEnv); d != "" {
		if f, err := os.Create(filepath.Join(d, fmt.Sprintf("cdc-%d.pprof", os.Getpid()))); err == nil {
			if pprof.StartCPUProfile(f) == nil {
				defer func() { pprof.StopCPUProfile(); f.Close() }()
			}
		}
	}
	batch, _ := strconv.Atoi(os.Getenv(batchSizeEnv))
	return cdc.Run(ctx, cdc.Config{
		DatabaseURL: os.Getenv(databaseEnv),
		Slot:        os.Getenv(slotEnv), Publication: os.Getenv(slotEnv),
		Publisher: function.NewSinkPublisher(map[string]string{"K_SINK": os.Getenv(sinkEnv), identity.TokenFileKey: os.Getenv(tokenEnv)}),
		Log:       telemetry.NewLogger(os.Stderr, telemetry.LevelFromEnv()),
		BatchSize: batch,
	})
}
