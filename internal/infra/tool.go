package infra

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
)

// toolBins caches the resolved path of each `go tool` binary: resolving runs
// the go command (and compiles the tool the first time), which is too slow to
// repeat for every server a test starts.
var (
	toolMu   sync.Mutex
	toolBins = map[string]string{}
)

// ToolBin returns the path of the Go tool name pinned in go.mod (`go tool -n
// name`, run from the module root so the pin applies). envVar, when set in the
// environment, overrides it with an explicit binary path.
func ToolBin(name, envVar string) (string, error) {
	if p := os.Getenv(envVar); p != "" {
		return p, nil
	}
	toolMu.Lock()
	defer toolMu.Unlock()
	if p, ok := toolBins[name]; ok {
		return p, nil
	}
	root, err := ModuleRoot()
	if err != nil {
		return "", fmt.Errorf("%s: %w (or set %s)", name, err, envVar)
	}
	cmd := exec.Command("go", "tool", "-n", name)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("resolve go tool %s in %s: %w: %s (or set %s)", name, root, err, strings.TrimSpace(stderr.String()), envVar)
	}
	p := strings.TrimSpace(string(out))
	toolBins[name] = p
	return p, nil
}

// ModuleRoot finds the Overture module root by walking up from the working
// directory to the go.mod that declares github.com/overture-music/overture.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("working directory: %w", err)
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(bytes.TrimSpace(b), []byte("module github.com/overture-music/overture")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("not inside the overture module (no go.mod above the working directory)")
		}
		dir = parent
	}
}

// startEnv is Start with extra environment variables for the child (used for
// credentials, which would otherwise show in the process list).
func startEnv(name, logPath string, stopSig syscall.Signal, env []string, bin string, args ...string) (*Process, error) {
	return spawn(name, logPath, stopSig, nil, env, bin, args...)
}
