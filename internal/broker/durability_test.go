package broker

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/internal/function"
	"github.com/overture-music/overture/internal/manifest"
	"github.com/overture-music/overture/internal/telemetry"
)

// crashChildEnv makes the test binary act as a broker process for the
// durability test instead of running tests.
const crashChildEnv = "OVERTURE_BROKER_CRASH_CHILD"

const crashYAML = brokerYAML + `
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: counted, namespace: overture}
spec:
  broker: default
  subscriber: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: counter}}
  delivery: {retry: 100, backoffPolicy: linear, backoffDelay: PT0.05S}
`

// crashChild hosts a broker whose subscriber records every delivered event id
// in PostgreSQL, serves the ingress on a free port, prints it, and runs until
// it is killed.
func crashChild() int {
	ctx := context.Background()
	log := telemetry.NewLogger(os.Stderr, slog.LevelWarn)
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	set := &manifest.Set{}
	if err := set.Add("crash.yaml", []byte(crashYAML)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	counter := handlerFunc(func(ctx context.Context, e event.Event) (*event.Event, error) {
		time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond) // keep work in flight
		_, err := pool.Exec(ctx, `INSERT INTO crash_delivered (id, n) VALUES ($1, 1) ON CONFLICT (id) DO UPDATE SET n = crash_delivered.n + 1`, e.ID())
		return nil, err
	})
	b, err := New(ctx, Config{
		Pool: pool, Objects: set, Log: log,
		Resolve: func(name string) (function.Handler, bool) { return counter, name == "counter" },
		Lease:   time.Second, Poll: 100 * time.Millisecond,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	go func() { _ = http.Serve(ln, b) }()
	fmt.Printf("LISTEN %s\n", ln.Addr())
	_ = b.Run(ctx) // until SIGKILL
	return 0
}

type child struct {
	cmd  *exec.Cmd
	addr string
}

func startChild(t *testing.T, dbURL string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"=1", "DATABASE_URL="+dbURL)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("broker child did not start: %v", err)
	}
	return &child{cmd: cmd, addr: strings.TrimSpace(strings.TrimPrefix(line, "LISTEN "))}
}

func (c *child) kill() {
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	_ = c.cmd.Wait()
}

// TestDurabilityAcrossSIGKILL publishes events over HTTP while the broker
// process is SIGKILLed and restarted several times, then checks that every
// event the ingress acknowledged (202) was delivered at least once.
func TestDurabilityAcrossSIGKILL(t *testing.T) {
	t.Parallel()
	pool := newPool(t)
	ctx := context.Background()
	dbURL := pool.Config().ConnString()
	if _, err := pool.Exec(ctx, `CREATE TABLE crash_delivered (id text PRIMARY KEY, n int NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	var current atomic.Pointer[child]
	current.Store(startChild(t, dbURL))
	t.Cleanup(func() { current.Load().kill() })

	const publishers, perPublisher = 4, 900
	var acked sync.Map
	var ackedN atomic.Int64
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 5 * time.Second}
	for p := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perPublisher {
				id := fmt.Sprintf("p%d-%d", p, i)
				body := fmt.Sprintf(`{"specversion":"1.0","id":%q,"type":"music.overture.crash.v1","source":"/test/crash"}`, id)
				for attempt := 0; ; attempt++ {
					resp, err := client.Post("http://"+current.Load().addr+"/overture/default", "application/cloudevents+json", strings.NewReader(body))
					if err == nil {
						resp.Body.Close()
						if resp.StatusCode == http.StatusAccepted {
							acked.Store(id, true)
							ackedN.Add(1)
							break
						}
					}
					if attempt > 500 {
						t.Errorf("event %s never acknowledged", id)
						return
					}
					time.Sleep(10 * time.Millisecond) // broker is down or restarting
				}
			}
		}()
	}
	published := make(chan struct{})
	go func() { wg.Wait(); close(published) }()

	kills := 0
	for kills < 4 {
		select {
		case <-published:
		case <-time.After(time.Duration(250+rand.IntN(200)) * time.Millisecond):
		}
		select {
		case <-published:
		default:
			current.Load().kill()
			kills++
			t.Logf("SIGKILLed the broker after %d acknowledged events", ackedN.Load())
			current.Store(startChild(t, dbURL))
			continue
		}
		break
	}
	<-published
	if kills < 3 {
		t.Fatalf("only %d kills happened before publishing finished; the test proves too little", kills)
	}
	// One last kill right after the final acknowledgement.
	current.Load().kill()
	current.Store(startChild(t, dbURL))

	want := int(ackedN.Load())
	deadline := time.Now().Add(90 * time.Second)
	var delivered, duplicates int
	for {
		if err := pool.QueryRow(ctx, `SELECT count(*), coalesce(sum(n - 1), 0) FROM crash_delivered`).Scan(&delivered, &duplicates); err != nil {
			t.Fatal(err)
		}
		if delivered >= want || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	var missing []string
	acked.Range(func(k, _ any) bool {
		var n int
		if err := pool.QueryRow(ctx, `SELECT n FROM crash_delivered WHERE id = $1`, k).Scan(&n); err != nil {
			missing = append(missing, k.(string))
		}
		return true
	})
	if len(missing) > 0 {
		t.Fatalf("%d of %d acknowledged events were never delivered, e.g. %v", len(missing), want, missing[:min(5, len(missing))])
	}
	t.Logf("%d acknowledged events, %d kills: all delivered, %d duplicate deliveries", want, kills+1, duplicates)
	eventually(t, 30*time.Second, "the delivery table to drain", func() bool {
		var n int
		_ = pool.QueryRow(ctx, `SELECT count(*) FROM broker_delivery`).Scan(&n)
		return n == 0
	})
}
