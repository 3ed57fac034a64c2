package infra

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// OpenSearch is a private single-node OpenSearch 2.19 started from the Maven
// Central jars that hack/deps/opensearch.sh fetches into ./.cache/opensearch.
type OpenSearch struct {
	*Process
	Port int
}

// URL returns the node's HTTP base URL.
func (o *OpenSearch) URL() string { return fmt.Sprintf("http://127.0.0.1:%d", o.Port) }

// OpenSearchOptions configure StartOpenSearch.
type OpenSearchOptions struct {
	// Dir is the node's home: data, logs and opensearch.log live under it.
	Dir  string
	Port int // HTTP port; 0 picks a free one
	// HeapMB is the JVM heap (default 512).
	HeapMB int
	// QuickStart trades peak query speed for a faster start (C1 JIT only):
	// right for tests, wrong for benchmarks.
	QuickStart bool
}

var osSetup sync.Mutex

// OpenSearchLib returns the directory holding the fetched jars (lib/) and the
// compiled launcher (classes/), running hack/deps/opensearch.sh when they are
// missing. OPENSEARCH_CACHE overrides the location.
func OpenSearchLib() (string, error) {
	osSetup.Lock()
	defer osSetup.Unlock()
	dir := os.Getenv("OPENSEARCH_CACHE")
	root, rootErr := ModuleRoot()
	if dir == "" {
		if rootErr != nil {
			return "", fmt.Errorf("opensearch: %w (or set OPENSEARCH_CACHE)", rootErr)
		}
		dir = filepath.Join(root, ".cache", "opensearch")
	}
	if _, err := os.Stat(filepath.Join(dir, "classes", "OvertureNode.class")); err == nil {
		return dir, nil
	}
	if rootErr != nil {
		return "", fmt.Errorf("opensearch: no launcher in %s and no module root to run hack/deps/opensearch.sh: %w", dir, rootErr)
	}
	cmd := exec.Command("bash", filepath.Join(root, "hack", "deps", "opensearch.sh"))
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("opensearch: hack/deps/opensearch.sh: %w: %s", err, out)
	}
	return dir, nil
}

// StartOpenSearch starts one OpenSearch node on 127.0.0.1 with `java` from
// PATH and waits until its HTTP API answers (a cold start takes 10-30 s on a
// small machine).
func StartOpenSearch(ctx context.Context, o OpenSearchOptions) (*OpenSearch, error) {
	java, err := exec.LookPath("java")
	if err != nil {
		return nil, fmt.Errorf("opensearch: java not found (apt-get install openjdk-17-jre-headless): %w", err)
	}
	lib, err := OpenSearchLib()
	if err != nil {
		return nil, err
	}
	if o.Port == 0 {
		if o.Port, err = FreePort(); err != nil {
			return nil, err
		}
	}
	tport, err := FreePort()
	if err != nil {
		return nil, err
	}
	if o.HeapMB == 0 {
		o.HeapMB = 512
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("opensearch: %w", err)
	}
	logCfg := filepath.Join(o.Dir, "log4j2.properties")
	if err := os.WriteFile(logCfg, []byte(openSearchLog4j), 0o644); err != nil {
		return nil, fmt.Errorf("opensearch: %w", err)
	}
	args := []string{
		fmt.Sprintf("-Xms%dm", o.HeapMB), fmt.Sprintf("-Xmx%dm", o.HeapMB),
		"-Dlog4j2.configurationFile=" + logCfg,
		"-Dopensearch.set.netty.runtime.available.processors=false",
		"-cp", filepath.Join(lib, "lib", "*") + string(os.PathListSeparator) + filepath.Join(lib, "classes"),
		"OvertureNode", filepath.Join(o.Dir, "home"), itoa(o.Port), itoa(tport),
	}
	if o.QuickStart {
		args = append([]string{"-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xshare:auto"}, args...)
	}
	logPath := filepath.Join(o.Dir, "opensearch.log")
	proc, err := Start("opensearch", logPath, syscall.SIGTERM, nil, java, args...)
	if err != nil {
		return nil, err
	}
	node := &OpenSearch{Process: proc, Port: o.Port}
	wctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	if err := waitOpenSearch(wctx, node); err != nil {
		_ = proc.Stop(5 * time.Second)
		return nil, fmt.Errorf("%w\n%s", err, tail(logPath, 2000))
	}
	return node, nil
}

// waitOpenSearch waits for cluster health yellow or better.
func waitOpenSearch(ctx context.Context, n *OpenSearch) error {
	url := n.URL() + "/_cluster/health?wait_for_status=yellow&timeout=1s"
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("opensearch: not healthy on %s: %w", n.URL(), ctx.Err())
		case <-n.Done():
			return fmt.Errorf("opensearch exited before answering on %s: %v", n.URL(), n.err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

const openSearchLog4j = `status = error
appender.console.type = Console
appender.console.name = console
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d{ISO8601}][%-5p][%-25c{1.}] %m%n
rootLogger.level = warn
rootLogger.appenderRef.console.ref = console
logger.node.name = org.opensearch.node
logger.node.level = info
`
