package server_test

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/overture-music/overture/internal/server"
)

// serve runs h behind g on a loopback listener with the production server
// settings and returns its address.
func serve(t *testing.T, h http.Handler, g server.Guard) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- server.Serve(ctx, server.NewHTTPServer(h, g), ln, slog.New(slog.DiscardHandler)) }()
	t.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String()
}

// echo answers with the body it read.
var echo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	_, _ = w.Write(b)
})

// readUntilClosed reads c until the server closes it and returns what it
// sent; it fails if that takes longer than within.
func readUntilClosed(t *testing.T, c net.Conn, within time.Duration) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(within))
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("the server kept the connection open for more than %s (read: %v; got %q)", within, err, b)
	}
	return string(b)
}

// The attack: a client that sends headers promptly and then the body one
// byte at a time, or never, held a connection (and a handler goroutine)
// forever. Now the body must arrive within BodyTimeout.
func TestSlowBodyIsCutOff(t *testing.T) {
	t.Parallel()
	addr := serve(t, echo, server.Guard{BodyTimeout: 500 * time.Millisecond})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	if _, err := io.WriteString(c, "POST /x HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"a\":"); err != nil {
		t.Fatal(err)
	}
	got := readUntilClosed(t, c, 10*time.Second)
	if took := time.Since(start); took < 400*time.Millisecond {
		t.Fatalf("closed after %s, before the body deadline", took)
	}
	if strings.Contains(got, "200 OK") {
		t.Fatalf("a truncated body was answered as a success: %q", got)
	}
}

// A body that arrives in time is read whole, and the connection stays
// usable for a handler that answers after the body deadline would have
// passed (the deadline covers the body, not the answer).
func TestBodyInTimeAndSlowAnswerSucceed(t *testing.T) {
	t.Parallel()
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		select {
		case <-time.After(700 * time.Millisecond):
		case <-r.Context().Done():
			http.Error(w, "context ended", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write(b)
	})
	addr := serve(t, slow, server.Guard{BodyTimeout: 300 * time.Millisecond})
	resp, err := http.Post("http://"+addr+"/", "application/json", strings.NewReader(`{"ok":true}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(b) != `{"ok":true}` {
		t.Fatalf("got %d %q, want the echoed body", resp.StatusCode, b)
	}
}

// The attack: Content-Length and Transfer-Encoding on one request (a front
// proxy framing by one, net/http by the other) were answered and the
// connection kept open for the smuggled remainder. Now: 400 and close.
func TestBothContentLengthAndTransferEncodingCloseTheConnection(t *testing.T) {
	t.Parallel()
	addr := serve(t, echo, server.Guard{})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	smuggle := "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"0\r\n\r\nGET /admin HTTP/1.1\r\nHost: x\r\n\r\n"
	if _, err := io.WriteString(c, smuggle); err != nil {
		t.Fatal(err)
	}
	got := readUntilClosed(t, c, 10*time.Second)
	if !strings.HasPrefix(got, "HTTP/1.1 400 ") {
		t.Fatalf("answer %q, want 400", got)
	}
	if n := strings.Count(got, "HTTP/1.1 "); n != 1 {
		t.Fatalf("%d answers on the connection, want only the 400: %q", n, got)
	}
	if !strings.Contains(got, "application/problem+json") || !strings.Contains(got, "Content-Length and Transfer-Encoding") {
		t.Fatalf("the 400 is not a problem naming both headers: %q", got)
	}
}

// Ordinary framings, pipelined on one connection, are all answered: the
// framer keeps up with Content-Length and chunked bodies (even with a header
// named like a framing header inside a body).
func TestPipelinedRequestsStillWork(t *testing.T) {
	t.Parallel()
	addr := serve(t, echo, server.Guard{})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body := "x\r\nTransfer-Encoding: chunked\r\n\r\n"
	reqs := "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body +
		"POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nTrailer-X: 1\r\n\r\n" +
		"GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
	if _, err := io.WriteString(c, reqs); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	for i, want := range []string{body, "hello", ""} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != want {
			t.Fatalf("answer %d: %d %q, want 200 %q", i, resp.StatusCode, b, want)
		}
	}
}

// Every answer carries the security headers, errors included.
func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	addr := serve(t, http.NotFoundHandler(), server.Guard{})
	resp, err := http.Get("http://" + addr + "/nothing")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for k, want := range map[string]string{
		"X-Content-Type-Options":  "nosniff",
		"Content-Security-Policy": server.ContentSecurityPolicy,
		"Referrer-Policy":         "no-referrer",
		"X-Frame-Options":         "DENY",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if !strings.Contains(server.ContentSecurityPolicy, "frame-ancestors 'none'") {
		t.Error("the policy does not forbid framing")
	}
}

// ClientIP believes X-Forwarded-For / Forwarded only from a trusted proxy,
// and only as far back as the chain stays on trusted proxies.
func TestClientIP(t *testing.T) {
	t.Parallel()
	g, err := server.GuardFromConfig(map[string]string{server.KeyTrustedProxies: "10.0.0.0/8, 127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, peer string
		hdr        map[string]string
		want       string
	}{
		{"NoProxy", "203.0.113.9:5000", nil, "203.0.113.9"},
		{"UntrustedPeerForges", "203.0.113.9:5000", map[string]string{"X-Forwarded-For": "198.51.100.1"}, "203.0.113.9"},
		{"TrustedProxy", "10.1.2.3:5000", map[string]string{"X-Forwarded-For": "198.51.100.1"}, "198.51.100.1"},
		{"ClientPrependsForgery", "10.1.2.3:5000", map[string]string{"X-Forwarded-For": "1.1.1.1, 198.51.100.1, 10.9.9.9"}, "198.51.100.1"},
		{"Forwarded", "127.0.0.1:5000", map[string]string{"Forwarded": `for="[2001:db8::7]:4711";proto=https, for=10.0.0.2`}, "2001:db8::7"},
		{"Garbage", "10.1.2.3:5000", map[string]string{"X-Forwarded-For": "not-an-ip"}, "10.1.2.3"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var got string
			h := g.Wrap(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { got = server.ClientIP(r) }))
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.peer
			for k, v := range tt.hdr {
				r.Header.Set(k, v)
			}
			h.ServeHTTP(httptest.NewRecorder(), r)
			if got != tt.want {
				t.Fatalf("ClientIP %q, want %q", got, tt.want)
			}
		})
	}
	if _, err := server.GuardFromConfig(map[string]string{server.KeyTrustedProxies: "10.0.0.0/33"}); err == nil {
		t.Fatal("a bad TRUSTED_PROXIES entry was accepted")
	}
}

// The attack: /metrics answered anyone. Now it needs METRICS_TOKEN, and with
// no token configured it answers nobody.
func TestMetricsNeedTheToken(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, token, auth string
		want              int
	}{
		{"Anonymous", "s3cret", "", 401},
		{"WrongToken", "s3cret", "Bearer guess", 401},
		{"NoTokenConfigured", "", "Bearer ", 401},
		{"Token", "s3cret", "Bearer s3cret", 200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mux := http.NewServeMux()
			server.Metrics(mux, nil, tt.token)
			r := httptest.NewRequest("GET", "/metrics", nil)
			if tt.auth != "" {
				r.Header.Set("Authorization", tt.auth)
			}
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, r)
			if rec.Code != tt.want {
				t.Fatalf("status %d, want %d", rec.Code, tt.want)
			}
			if tt.want == 401 && (rec.Header().Get("Content-Type") != "application/problem+json" || strings.Contains(rec.Body.String(), "go_goroutines")) {
				t.Fatalf("refusal is %q: %s", rec.Header().Get("Content-Type"), rec.Body.String())
			}
		})
	}
}
