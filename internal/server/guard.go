package server

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/overture-music/overture/internal/config"
	"github.com/overture-music/overture/internal/problem"
)

// The limits every Overture HTTP server runs with (NewHTTPServer). There is
// deliberately no http.Server.ReadTimeout: it stays armed while the handler
// runs, and when it fires net/http cancels the request's context, which would
// cut off a long answer (a POP streaming a track, a ?after= wait). The body's
// bound is set per request instead (Guard.BodyTimeout).
const (
	// ReadHeaderTimeout bounds the request line and headers.
	ReadHeaderTimeout = 5 * time.Second
	// IdleTimeout closes a keep-alive connection that sends nothing.
	IdleTimeout = 2 * time.Minute
	// MaxHeaderBytes bounds the request line and headers together.
	MaxHeaderBytes = 64 << 10
	// DefaultBodyTimeout bounds reading a request body (Guard.BodyTimeout).
	DefaultBodyTimeout = 30 * time.Second
)

// Security headers every answer carries (Guard). The policy is the strict one
// for an API: nothing may be loaded, framed or submitted on the strength of an
// API response. A handler that serves a page sets its own
// Content-Security-Policy (Set replaces this one).
const (
	ContentSecurityPolicy = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
	ReferrerPolicy        = "no-referrer"
)

// KeyTrustedProxies is the cfg key listing the proxies (CIDRs or addresses,
// comma-separated) whose X-Forwarded-For / Forwarded headers name the client.
const KeyTrustedProxies = "TRUSTED_PROXIES"

// Guard is the front every Overture HTTP server puts before its handler (one
// per server, outermost): security headers, the request-smuggling refusal,
// the body read deadline and the client address. Services mounted on the
// gateway are behind the gateway's Guard only.
type Guard struct {
	// TrustedProxies are the direct peers allowed to say who the client is.
	TrustedProxies []netip.Prefix
	// BodyTimeout bounds reading a request body, from the end of the
	// headers (DefaultBodyTimeout when zero).
	BodyTimeout time.Duration
}

// GuardFromConfig reads TRUSTED_PROXIES from cfg.
func GuardFromConfig(cfg map[string]string) (Guard, error) {
	r := config.NewReader(cfg)
	g := ReadGuard(r)
	return g, r.Err()
}

// ReadGuard reads TRUSTED_PROXIES from r, recording a bad entry on r.
func ReadGuard(r *config.Reader) Guard {
	var g Guard
	for _, s := range strings.Split(r.StringOr(KeyTrustedProxies, ""), ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				r.Fail(KeyTrustedProxies, "%q is not a CIDR or an address", s)
				continue
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		g.TrustedProxies = append(g.TrustedProxies, p.Masked())
	}
	return g
}

// NewHTTPServer returns the http.Server every Overture HTTP server runs: h
// behind g, the limits above, and the smuggling check of Listener's
// connections. Serve it with Serve, or on a listener wrapped by Listener.
func NewHTTPServer(h http.Handler, g Guard) *http.Server {
	return &http.Server{
		Handler:           g.Wrap(h),
		ReadHeaderTimeout: ReadHeaderTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ConnContext:       ConnContext,
	}
}

type clientKey struct{}

// Wrap puts g in front of h.
func (g Guard) Wrap(h http.Handler) http.Handler {
	timeout := g.BodyTimeout
	if timeout <= 0 {
		timeout = DefaultBodyTimeout
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hdr := w.Header()
		hdr.Set("X-Content-Type-Options", "nosniff")
		hdr.Set("Content-Security-Policy", ContentSecurityPolicy)
		hdr.Set("Referrer-Policy", ReferrerPolicy)
		hdr.Set("X-Frame-Options", "DENY")
		if smuggled(r) {
			// Both framings on one request: a proxy in front may have cut
			// it differently than net/http did. Trust nothing more from
			// this connection.
			hdr.Set("Connection", "close")
			problem.Write(w, r, problem.New(http.StatusBadRequest, "ambiguous-framing",
				"the request has both Content-Length and Transfer-Encoding; send one"))
			return
		}
		if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
			rc := http.NewResponseController(w)
			if err := rc.SetReadDeadline(time.Now().Add(timeout)); err == nil {
				r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc}
			}
		}
		ip := g.clientIP(r)
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), clientKey{}, ip)))
	})
}

// deadlineBody lifts the body's read deadline once the body has been read:
// from then on the connection's reads are net/http's own (the next request,
// or noticing that the client went away), which must not time out while the
// handler is still answering.
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	done bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && !b.done {
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

// ClientIP is the address of the client that sent r: the one the Guard in
// front of the handler determined (the socket peer, or what a trusted proxy
// forwarded), else the socket peer. Everything that keys on the client (rate
// limits, signed URLs bound to an address, region by address) uses it.
func ClientIP(r *http.Request) string {
	if ip, ok := r.Context().Value(clientKey{}).(string); ok {
		return ip
	}
	return peer(r)
}

func peer(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// clientIP walks the forwarding chain from the socket peer backwards: each
// hop that is a trusted proxy may name the one before it; the first address
// that is not a trusted proxy is the client. A client cannot forge its way
// past this, because the hops it made up sit before the first untrusted one.
func (g Guard) clientIP(r *http.Request) string {
	p := peer(r)
	if len(g.TrustedProxies) == 0 {
		return p
	}
	hop, err := netip.ParseAddr(p)
	if err != nil || !g.trusted(hop) {
		return p
	}
	chain := forwarded(r.Header)
	for i := len(chain) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(chain[i])
		if err != nil {
			return hop.String() // a hop we cannot read: stop at the last we could
		}
		hop = a.Unmap()
		if !g.trusted(hop) {
			return hop.String()
		}
	}
	return hop.String()
}

func (g Guard) trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range g.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// forwarded lists the client addresses a request's proxies recorded, oldest
// first: the RFC 7239 Forwarded header's for= when present, else
// X-Forwarded-For.
func forwarded(h http.Header) []string {
	var out []string
	if vs := h.Values("Forwarded"); len(vs) > 0 {
		for _, v := range vs {
			for _, elem := range strings.Split(v, ",") {
				for _, pair := range strings.Split(elem, ";") {
					k, val, ok := strings.Cut(strings.TrimSpace(pair), "=")
					if !ok || !strings.EqualFold(k, "for") {
						continue
					}
					out = append(out, forwardedNode(strings.Trim(val, `"`)))
				}
			}
		}
		return out
	}
	for _, v := range h.Values("X-Forwarded-For") {
		for _, a := range strings.Split(v, ",") {
			out = append(out, strings.TrimSpace(a))
		}
	}
	return out
}

// forwardedNode strips the port and IPv6 brackets of a Forwarded for= node.
func forwardedNode(n string) string {
	if strings.HasPrefix(n, "[") {
		if end := strings.IndexByte(n, ']'); end > 0 {
			return n[1:end]
		}
		return n
	}
	if host, _, err := net.SplitHostPort(n); err == nil {
		return host
	}
	return n
}
