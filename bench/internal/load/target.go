package load

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// target is the parsed base URL of the service under load.
type target struct {
	base     string // scheme://host[:port][/prefix], without trailing slash
	host     string // Host header value
	dialAddr string // resolved ip:port
	ip       net.IP
	path     string // path prefix, without trailing slash
	tls      bool
	wire     wire // endpoints and framing of the protocol
}

// eventsURL is the listeners' URL; query ("?…" or "") is added to it.
func (t *target) eventsURL(query string) string { return t.base + t.wire.eventsPath + query }
func (t *target) postURL() string               { return t.base + t.wire.postPath }

// parseTarget parses the base URL and resolves its host once, so that
// thousands of dials do not each go through the resolver.
func parseTarget(ctx context.Context, raw string) (*target, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("bad -url: %w", err)
	}
	t := &target{}
	switch u.Scheme {
	case "http":
	case "https":
		t.tls = true
	default:
		return nil, fmt.Errorf("bad -url %q: scheme must be http or https", raw)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("bad -url %q: no host", raw)
	}
	port := u.Port()
	if port == "" {
		port = "80"
		if t.tls {
			port = "443"
		}
	}
	host := u.Hostname()
	ip := net.ParseIP(host)
	if ip == nil {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		ips, err := net.DefaultResolver.LookupIPAddr(rctx, host)
		if err != nil {
			return nil, fmt.Errorf("resolve %s: %w", host, err)
		}
		if len(ips) == 0 {
			return nil, fmt.Errorf("resolve %s: no address", host)
		}
		ip = ips[0].IP
		for _, a := range ips { // prefer IPv4, loopback tests mostly use it
			if a.IP.To4() != nil {
				ip = a.IP
				break
			}
		}
	}
	t.ip = ip
	t.host = u.Host
	t.dialAddr = net.JoinHostPort(ip.String(), port)
	t.path = strings.TrimRight(u.EscapedPath(), "/")
	t.base = u.Scheme + "://" + u.Host + t.path
	return t, nil
}

// dialer opens listener connections, optionally spreading them over several
// local source addresses so that more connections than one address has
// ephemeral ports can be made (loopback only: 127.0.0.0/8 is all local).
type dialer struct {
	t       *target
	locals  []*net.TCPAddr
	next    atomic.Uint64
	timeout time.Duration
	tlsConf *tls.Config
}

// portsPerSourceIP is a conservative number of connections to put on one
// source address (Linux's default ephemeral range has about 28,000 ports, and
// sockets in TIME_WAIT from earlier runs use some).
const portsPerSourceIP = 20000

func newDialer(t *target, listeners, sourceIPs int, timeout time.Duration, insecure bool) (*dialer, error) {
	d := &dialer{t: t, timeout: timeout}
	if t.tls {
		host := t.host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		d.tlsConf = &tls.Config{ServerName: host, InsecureSkipVerify: insecure} //nolint:gosec // opt-in flag for self-signed test deployments
	}
	if sourceIPs == 0 && listeners > portsPerSourceIP && t.ip.IsLoopback() && t.ip.To4() != nil {
		sourceIPs = (listeners + portsPerSourceIP - 1) / portsPerSourceIP
	}
	if sourceIPs > 1 {
		if !t.ip.IsLoopback() || t.ip.To4() == nil {
			return nil, errors.New("-source-ips > 1 needs an IPv4 loopback target (127.0.0.0/8)")
		}
		if sourceIPs > 250 {
			return nil, errors.New("-source-ips: at most 250")
		}
		for i := 0; i < sourceIPs; i++ {
			d.locals = append(d.locals, &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+i))})
		}
	}
	return d, nil
}

func (d *dialer) dialContext(ctx context.Context, _, _ string) (net.Conn, error) {
	nd := net.Dialer{Timeout: d.timeout}
	if len(d.locals) > 0 {
		nd.LocalAddr = d.locals[d.next.Add(1)%uint64(len(d.locals))]
		nd.Control = bindNoPort
	}
	return nd.DialContext(ctx, "tcp", d.t.dialAddr)
}

// dial opens a connection (TLS when the target is https).
func (d *dialer) dial(ctx context.Context) (net.Conn, error) {
	c, err := d.dialContext(ctx, "tcp", d.t.dialAddr)
	if err != nil {
		return nil, err
	}
	if d.tlsConf == nil {
		return c, nil
	}
	tc := tls.Client(c, d.tlsConf)
	hctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		c.Close()
		return nil, err
	}
	return tc, nil
}

// sseRequest is the raw GET request a listener sends; query ("?…" or "")
// is added to the path.
func (t *target) sseRequest(query string) []byte {
	return []byte("GET " + t.path + t.wire.eventsPath + query + " HTTP/1.1\r\n" +
		"Host: " + t.host + "\r\n" +
		"User-Agent: sseload\r\n" +
		"Accept: text/event-stream\r\n" +
		"Cache-Control: no-cache\r\n" +
		"\r\n")
}
