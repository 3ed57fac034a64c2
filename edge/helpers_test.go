package edge

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/overture-music/overture/edge/urlsign"
	"github.com/overture-music/overture/internal/infra"
	"github.com/overture-music/overture/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// originEnv is a real versitygw S3 server behind a counting reverse proxy
// that the test can "unplug" (point at a dead port) to simulate an outage.
type originEnv struct {
	s3       *s3.Client
	endpoint string // the proxy the edge talks to
	access   string
	secret   string

	gets  atomic.Int64 // GETs that reached the proxy
	mu    sync.Mutex
	byKey map[string]int
	down  atomic.Bool
}

var (
	s3Once                         sync.Once
	s3Endpoint, s3Access, s3Secret string
	s3Err                          error
)

// sharedS3 is one real versitygw for the package (tests use distinct keys
// and each gets its own counting proxy), started once: a server per test
// made parallel start-ups time out on a busy 2-core machine. It runs with a
// parent-death signal, so it ends with the test binary.
func sharedS3(t *testing.T) (string, string, string) {
	t.Helper()
	s3Once.Do(func() {
		if _, s3Err = infra.ToolBin("versitygw", "VERSITYGW_BIN"); s3Err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		var srv *infra.S3
		srv, s3Err = infra.StartS3(ctx, infra.S3Options{Dir: filepath.Join(testenv.Dir(), "s3"), AccessKey: "edgetest", SecretKey: "edge-test-secret-123"})
		if s3Err != nil {
			return
		}
		s3Endpoint, s3Access, s3Secret = srv.Endpoint(), srv.AccessKey, srv.SecretKey
		c := s3.New(s3.Options{BaseEndpoint: aws.String(s3Endpoint), Region: "us-east-1", UsePathStyle: true,
			Credentials: credentials.NewStaticCredentialsProvider(s3Access, s3Secret, "")})
		_, s3Err = c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("media")})
	})
	if s3Err != nil {
		t.Fatalf("shared test S3: %v", s3Err)
	}
	return s3Endpoint, s3Access, s3Secret
}

func newTestOrigin(t *testing.T) *originEnv {
	t.Helper()
	ep, access, secret := sharedS3(t)
	target, _ := url.Parse(ep)
	o := &originEnv{access: access, secret: secret, byKey: map[string]int{}}
	o.s3 = s3.New(s3.Options{BaseEndpoint: aws.String(ep), Region: "us-east-1", UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(access, secret, "")})
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target)
		r.Out.Host = r.In.Host // SigV4 signed the proxy's host
	}}
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if o.down.Load() {
			// Behave like a dead origin: drop the connection.
			if hj, ok := w.(http.Hijacker); ok {
				c, _, _ := hj.Hijack()
				c.Close()
				return
			}
		}
		if r.Method == http.MethodGet {
			o.gets.Add(1)
			o.mu.Lock()
			o.byKey[strings.TrimPrefix(r.URL.Path, "/media/")]++
			o.mu.Unlock()
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)
	o.endpoint = proxy.URL
	return o
}

func (o *originEnv) put(t *testing.T, key string, body []byte) {
	t.Helper()
	if _, err := o.s3.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("media"), Key: aws.String(key), Body: bytes.NewReader(body)}); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

func (o *originEnv) getsFor(key string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.byKey[key]
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// testMetricsToken is the POPs' METRICS_TOKEN in tests; operator is its header.
const testMetricsToken = "test-metrics-token"

var operator = map[string]string{"Authorization": "Bearer " + testMetricsToken}

var testKeys = urlsign.Keys{"k1": []byte("0123456789abcdef-secret-one"), "k2": []byte("fedcba9876543210-secret-two")}

// startEdge starts a POP against o with cfg tweaks applied.
func startEdge(t *testing.T, o *originEnv, tweak func(*Config)) *Server {
	t.Helper()
	cfg := Config{Name: "pop-test", Region: "eu-west", Addr: "127.0.0.1:0", S3Endpoint: o.endpoint, S3AccessKey: o.access,
		S3SecretKey: o.secret, SigningKeys: testKeys, AdminSecret: "admin-secret", MetricsToken: testMetricsToken, OriginTimeout: 15 * time.Second, Logger: testLogger()}
	if tweak != nil {
		tweak(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Stop(ctx)
	})
	return s
}

// signed returns the URL of key on s with a token for prefix.
func signed(t testing.TB, s *Server, key, prefix string, mod func(*urlsign.Token)) string {
	t.Helper()
	tok := urlsign.Token{KeyID: "k1", Expires: time.Now().Add(time.Hour), Prefix: prefix}
	if mod != nil {
		mod(&tok)
	}
	v, err := testKeys.Sign(tok)
	if err != nil {
		t.Fatal(err)
	}
	return s.URL() + MediaPrefix + key + "?t=" + url.QueryEscape(v)
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func do(t testing.TB, method, u string, hdr map[string]string) resp {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp{r.StatusCode, r.Header, b}
}

// testLogger shows the POP's logs when EDGE_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("EDGE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return slog.New(slog.DiscardHandler)
}
