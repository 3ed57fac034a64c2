package media

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// waitDelay is how long Wait waits for the output pipes after the process
// group was killed, before it closes them itself (a grandchild holding a pipe
// open must not hang the call).
const waitDelay = 2 * time.Second

// run execs bin with args under a slot of p's semaphore and p's per-run
// timeout, in its own process group so cancellation kills everything it
// started. stdout, when not nil, receives the standard output as it comes.
// The returned output holds the start and end of stderr, for parsing and
// error details, and the problem lines found anywhere in it.
func (p *Processor) run(ctx context.Context, bin string, args []string, stdout io.Writer) (out output, err error) {
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return out, fmt.Errorf("waiting to run %s: %w", bin, context.Cause(ctx))
	}
	defer func() { <-p.sem }()

	runCtx, cancel := context.WithTimeoutCause(ctx, p.cfg.Timeout, errRunTimeout)
	defer cancel()
	cmd := exec.CommandContext(runCtx, bin, args...)
	// Its own group, so a cancel kills its children too; and killed with
	// the runtime, so a SIGKILLed function leaves no encoder running (as
	// internal/infra's children).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error {
		// Negative pid: the whole process group.
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = waitDelay
	var errBuf headTail
	cmd.Stderr = &errBuf
	if stdout != nil {
		cmd.Stdout = stdout
	}
	if err := cmd.Start(); err != nil {
		if ctx.Err() != nil {
			return out, fmt.Errorf("starting %s: %w", bin, context.Cause(ctx))
		}
		if errors.Is(context.Cause(runCtx), errRunTimeout) {
			return out, newError(ReasonTimeout, err, "%s did not start within %s", bin, p.cfg.Timeout)
		}
		return out, newError(ReasonFFmpegFailed, err, "starting %s", bin)
	}
	if p.onStart != nil {
		p.onStart(bin, cmd.Process.Pid)
	}
	werr := cmd.Wait()
	out = output{stderr: errBuf.String(), problems: errBuf.problems}
	stderr := out.stderr
	switch {
	case werr == nil:
		return out, nil
	case ctx.Err() != nil:
		return out, fmt.Errorf("%s killed: %w", bin, context.Cause(ctx))
	case errors.Is(context.Cause(runCtx), errRunTimeout):
		return out, newError(ReasonTimeout, werr, "%s ran longer than %s", bin, p.cfg.Timeout)
	}
	var exitErr *exec.ExitError
	if errors.As(werr, &exitErr) {
		return out, &exitError{bin: bin, err: exitErr, stderr: stderr}
	}
	return out, newError(ReasonFFmpegFailed, werr, "%s: %s", bin, lastLines(stderr, 5))
}

// output is what a run left on stderr.
type output struct {
	stderr   string   // head and tail, see headTail
	problems []string // decoding problems anywhere in it, see isProblem
}

var errRunTimeout = errors.New("ffmpeg run timeout")

// exitError is a run that ended with a non-zero status or a signal; callers
// turn it into an *Error with the reason the stderr points to.
type exitError struct {
	bin    string
	err    *exec.ExitError
	stderr string
}

func (e *exitError) Error() string {
	return fmt.Sprintf("%s: %v: %s", e.bin, e.err, lastLines(e.stderr, 5))
}

func (e *exitError) Unwrap() error { return e.err }

// signaled reports whether the process died of a signal (a crash) rather
// than exiting with a status.
func (e *exitError) signaled() bool {
	ws, ok := e.err.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled()
}

// headTail keeps the first headMax and the last tailMax bytes written to it:
// ffmpeg's first lines say what it opened, its last lines what went wrong and
// (for loudnorm) the measurement. It also scans every line as it passes and
// keeps the first few problem lines, which may be in the dropped middle of a
// long run's output.
type headTail struct {
	head     []byte
	tail     []byte
	dropped  int64
	line     []byte // the current incomplete line, at most lineMax bytes
	problems []string
}

const (
	lineMax     = 1 << 10
	problemsMax = 3
)

const (
	headMax = 4 << 10
	tailMax = 64 << 10
)

func (h *headTail) Write(b []byte) (int, error) {
	n := len(b)
	h.scan(b)
	if room := headMax - len(h.head); room > 0 {
		k := min(room, len(b))
		h.head = append(h.head, b[:k]...)
		b = b[k:]
	}
	h.tail = append(h.tail, b...)
	// Trim only when twice over, so a chatty ffmpeg costs amortised O(1).
	if over := len(h.tail) - tailMax; over > tailMax {
		h.dropped += int64(over)
		h.tail = append(h.tail[:0], h.tail[over:]...)
	}
	return n, nil
}

// scan splits b into lines and keeps the problem ones.
func (h *headTail) scan(b []byte) {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		chunk := b
		if i >= 0 {
			chunk = b[:i]
		}
		if room := lineMax - len(h.line); room > 0 {
			h.line = append(h.line, chunk[:min(room, len(chunk))]...)
		}
		if i < 0 {
			return
		}
		if len(h.problems) <= problemsMax && isProblem(string(h.line)) {
			if len(h.problems) == problemsMax {
				h.problems = append(h.problems, "…")
			} else {
				h.problems = append(h.problems, strings.TrimSpace(string(h.line)))
			}
		}
		h.line = h.line[:0]
		b = b[i+1:]
	}
}

// isProblem reports whether an ffmpeg stderr line (logged with -loglevel
// +level) is an error, or a warning about a corrupt packet: ffmpeg conceals
// damaged frames and carries on, so a decode that "succeeds" may still have
// audible holes.
func isProblem(line string) bool {
	return strings.Contains(line, "[error]") || strings.Contains(line, "[fatal]") ||
		(strings.Contains(line, "[warning]") && strings.Contains(line, "corrupt"))
}

func (h *headTail) String() string {
	tail, dropped := h.tail, h.dropped
	if over := len(tail) - tailMax; over > 0 {
		tail, dropped = tail[over:], dropped+int64(over)
	}
	if dropped == 0 {
		return string(h.head) + string(tail)
	}
	return fmt.Sprintf("%s\n[... %d bytes of stderr dropped ...]\n%s", h.head, dropped, tail)
}

// lastLines returns the last n non-empty lines of s, joined by " | ", for an
// error detail a person reads.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	var out []string
	for i := len(lines) - 1; i >= 0 && len(out) < n; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" {
			out = append(out, l)
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return string(bytes.TrimSpace([]byte(strings.Join(out, " | "))))
}
