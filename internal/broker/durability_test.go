package broker

import (
	"context"
	"crypto"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/internal/broker/brokertest"
	"github.com/overture-music/overture/internal/function"
	"github.com/overture-music/overture/internal/identity"
	"github.com/overture-music/overture/internal/manifest"
	"github.com/overture-music/overture/internal/telemetry"
	"github.com/overture-music/overture/internal/testenv"
)

// crashChildEnv makes the test binary act as a broker process for the
// durability test instead of running tests; its value is a crashConfig as
// JSON.
const crashChildEnv = "OVERTURE_BROKER_CRASH_CHILD"

// crashConfig is what the test hands a broker child.
type crashConfig struct {
	DatabaseURL string `json:"database_url"`
	// KeyFile is the identity issuer key file the test and its broker
	// children share (the platform keeps its key under the data directory).
	KeyFile string `json:"key_file"`
}

// crashYAML routes to counter (any order) and to sequencer (per partition
// key, in order), each with retries enough to outlast the crashes.
var crashYAML = brokerYAML +
	trigger("counted", "counter", "  delivery: {retry: 100, backoffPolicy: linear, backoffDelay: PT0.05S}") +
	trigger("ordered", "sequencer", "  delivery: {retry: 100, backoffPolicy: linear, backoffDelay: PT0.05S}",
		"kafka.eventing.knative.dev/delivery.order: ordered") +
	brokertest.AllowYAML("crash-producer", "system:serviceaccount:overture:producer", "music.overture.crash.")

// crashChild hosts a broker whose subscriber records every delivered event id
// in PostgreSQL, serves the ingress on a free port, prints READY and then
// "LISTEN <addr>", and runs until it is killed.
func crashChild(cfg crashConfig) error {
	ctx := context.Background()
	log := telemetry.NewLogger(os.Stderr, slog.LevelWarn)
	pool, err := pgxpool.New(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	set := &manifest.Set{}
	if err := set.Add("crash.yaml", []byte(crashYAML)); err != nil {
		return err
	}
	counter := handlerFunc(func(ctx context.Context, e event.Event) (*event.Event, error) {
		time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond) // keep work in flight
		_, err := pool.Exec(ctx, `INSERT INTO crash_delivered (id, n) VALUES ($1, 1) ON CONFLICT (id) DO UPDATE SET n = crash_delivered.n + 1`, e.ID())
		return nil, err
	})
	sequencer := handlerFunc(func(ctx context.Context, e event.Event) (*event.Event, error) {
		key, _ := manifest.Attribute(e, "partitionkey")
		_, err := pool.Exec(ctx, `INSERT INTO crash_ordered (key, id) VALUES ($1, $2)`, key, e.ID())
		return nil, err
	})
	issuer, err := identity.LoadOrCreateIssuer(cfg.KeyFile, identity.EmbeddedIssuer)
	if err != nil {
		return err
	}
	verifier, err := identity.NewVerifier(ctx, identity.VerifierConfig{Issuer: issuer.Issuer(), Keys: []crypto.PublicKey{issuer.PublicKey()}})
	if err != nil {
		return err
	}
	b, err := New(ctx, Config{
		Pool: pool, Objects: set, Log: log, Verifier: verifier,
		Resolve: func(name string) (function.Handler, bool) {
			switch name {
			case "counter":
				return counter, true
			case "sequencer":
				return sequencer, true
			}
			return nil, false
		},
		Lease: time.Second, Poll: 100 * time.Millisecond,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go func() { _ = http.Serve(ln, b) }()
	fmt.Println(testenv.Ready)
	fmt.Printf("LISTEN %s\n", ln.Addr())
	return b.Run(ctx) // until SIGKILL
}

// child is a broker process and the address of its ingress.
type child struct {
	*testenv.Child
	addr string
}

func startChild(t *testing.T, cfg crashConfig) *child {
	t.Helper()
	c := testenv.StartChild(t, crashChildEnv, cfg)
	line := c.Next(t, time.Minute, "ingress address")
	return &child{Child: c, addr: strings.TrimPrefix(line, "LISTEN ")}
}

func (c *child) kill(t *testing.T) {
	t.Helper()
	if err := c.Kill(); err != nil {
		t.Fatal(err)
	}
}

// TestDurabilityAcrossSIGKILL publishes events over HTTP while the broker
// process is SIGKILLed and restarted several times, then checks that every
// event the ingress acknowledged (202) was delivered at least once.
func TestDurabilityAcrossSIGKILL(t *testing.T) {
	t.Parallel()
	pool := newPool(t)
	ctx := context.Background()
	dbURL := pool.Config().ConnString()
	if _, err := pool.Exec(ctx, `CREATE TABLE crash_delivered (id text PRIMARY KEY, n int NOT NULL);
		CREATE TABLE crash_ordered (seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, key text NOT NULL, id text NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "issuer.pem")
	issuer, err := identity.LoadOrCreateIssuer(keyFile, identity.EmbeddedIssuer)
	if err != nil {
		t.Fatal(err)
	}
	token, err := issuer.Mint(identity.Subject("producer"), identity.BrokerAudience("overture", "default"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cfg := crashConfig{DatabaseURL: dbURL, KeyFile: keyFile}
	var current atomic.Pointer[child]
	current.Store(startChild(t, cfg))

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
				body := fmt.Sprintf(`{"specversion":"1.0","id":%q,"type":"music.overture.crash.v1","source":"/test/crash","partitionkey":"p%d"}`, id, p)
				// Sent again while the broker is down or restarting.
				ok := testenv.Poll(5*time.Minute, func() bool {
					req, _ := http.NewRequest(http.MethodPost, "http://"+current.Load().addr+"/overture/default", strings.NewReader(body))
					req.Header.Set("Content-Type", "application/cloudevents+json")
					req.Header.Set("Authorization", "Bearer "+token)
					resp, err := client.Do(req)
					if err != nil {
						return false
					}
					resp.Body.Close()
					return resp.StatusCode == http.StatusAccepted
				})
				if !ok {
					t.Errorf("event %s never acknowledged", id)
					return
				}
				acked.Store(id, true)
				ackedN.Add(1)
			}
		}()
	}
	published := make(chan struct{})
	go func() { wg.Wait(); close(published) }()

	// Each kill comes after a random number of further acknowledgements
	// (a pace that follows the machine's speed).
	kills := 0
	for kills < 4 {
		next := ackedN.Load() + int64(20+rand.IntN(100))
		testenv.Poll(5*time.Minute, func() bool {
			select {
			case <-published:
				return true
			default:
				return ackedN.Load() >= next
			}
		})
		select {
		case <-published:
		default:
			current.Load().kill(t)
			kills++
			t.Logf("SIGKILLed the broker after %d acknowledged events", ackedN.Load())
			current.Store(startChild(t, cfg))
			continue
		}
		break
	}
	<-published
	if kills < 3 {
		t.Fatalf("only %d kills happened before publishing finished; the test proves too little", kills)
	}
	// One last kill right after the final acknowledgement.
	current.Load().kill(t)
	current.Store(startChild(t, cfg))

	want := int(ackedN.Load())
	// Judged by progress: deliveries must keep coming until all are in.
	var delivered, duplicates int
	testenv.PollProgress(2*time.Minute, func() (bool, int) {
		if err := pool.QueryRow(ctx, `SELECT count(*), coalesce(sum(n - 1), 0) FROM crash_delivered`).Scan(&delivered, &duplicates); err != nil {
			t.Fatal(err)
		}
		return delivered >= want, delivered
	})
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

	// The ordered trigger got every acknowledged event too, and each
	// publisher's key in publishing order: redeliveries after a crash repeat
	// an event, they never let a later one overtake it.
	eventually(t, 90*time.Second, "the ordered trigger to catch up", func() bool {
		var n int
		_ = pool.QueryRow(ctx, `SELECT count(DISTINCT id) FROM crash_ordered`).Scan(&n)
		return n >= want
	})
	rows, err := pool.Query(ctx, `SELECT key, id FROM crash_ordered ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	next := map[string]int{}
	for rows.Next() {
		var key, id string
		if err := rows.Scan(&key, &id); err != nil {
			t.Fatal(err)
		}
		if seen[id] {
			continue // a redelivery
		}
		seen[id] = true
		var p, i int
		fmt.Sscanf(id, "p%d-%d", &p, &i)
		if i < next[key] {
			t.Fatalf("key %s: %s first delivered after %s-%d", key, id, key, next[key]-1)
		}
		next[key] = i + 1
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	acked.Range(func(k, _ any) bool {
		if !seen[k.(string)] {
			t.Errorf("acknowledged %s never reached the ordered trigger", k)
		}
		return true
	})
	eventually(t, 30*time.Second, "the delivery table to drain", func() bool {
		var n int
		_ = pool.QueryRow(ctx, `SELECT count(*) FROM broker_delivery`).Scan(&n)
		return n == 0
	})
}
