package server

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"
)

// LagPolicy says what happens to a listener that fell further behind than the
// buffer holds.
type LagPolicy string

// Lag policies.
const (
	// LagContinue sends the listener a "gap" event saying how many events it
	// missed, and carries on with the oldest events still held.
	LagContinue LagPolicy = "continue"
	// LagCut sends the "gap" event and ends the stream; the client
	// reconnects after its retry delay.
	LagCut LagPolicy = "cut"
)

// Config is the service's configuration. The zero value is not valid: start
// from [DefaultConfig].
type Config struct {
	// Addr is the TCP address to listen on, host:port (host may be empty).
	Addr string
	// IPField is the name of the top-level field that receives the
	// producer's IP address; empty turns enrichment off.
	IPField string
	// PublishToken, when set, is required as "Authorization: Bearer <token>"
	// on POST /api/events.
	PublishToken string
	// LagPolicy is what happens to a listener that fell behind the buffer.
	LagPolicy LagPolicy
	// Version is reported by /health.
	Version string
	// CORSOrigins are the origins allowed to call the service from a
	// browser; ["*"] (the default) allows any origin.
	CORSOrigins []string
	// TrustedProxies are the peers whose X-Forwarded-For header is believed
	// when taking the producer's IP address. Empty: never.
	TrustedProxies []netip.Prefix
	// MaxBody is the largest accepted event body, in bytes.
	MaxBody int
	// Buffer is how many events the ring holds: how far a listener may fall
	// behind before it misses events.
	Buffer int
	// MaxListeners bounds concurrent listeners; 0 means no bound.
	MaxListeners int
	// Heartbeat is the idle interval after which a stream gets a comment.
	Heartbeat time.Duration
	// WriteTimeout bounds each write to a listener: one that stops reading
	// is cut after at most this long.
	WriteTimeout time.Duration
	// Linger is how long a busy stream gathers events before it writes
	// them: a stream is busy when it found several events waiting, or wrote
	// less than Linger ago. A stream that finds one event after a pause
	// writes it at once. 0 always writes at once.
	Linger time.Duration
	// Retry is the reconnection delay suggested to listeners turned away or
	// ended by shutdown; each gets Retry plus up to 100% random jitter.
	Retry time.Duration
	// ShutdownTimeout bounds a graceful shutdown.
	ShutdownTimeout time.Duration
}

// DefaultConfig returns the defaults: port 8080, 64 KiB bodies, 4096 events
// of buffer, 15 s heartbeat, any origin, user_ip enrichment, X-Forwarded-For
// trusted from loopback and private networks.
func DefaultConfig() Config {
	return Config{
		Addr:            ":8080",
		IPField:         "user_ip",
		LagPolicy:       LagContinue,
		Version:         "dev",
		CORSOrigins:     []string{"*"},
		TrustedProxies:  DefaultTrustedProxies(),
		MaxBody:         64 << 10,
		Buffer:          4096,
		MaxListeners:    50_000,
		Heartbeat:       15 * time.Second,
		WriteTimeout:    10 * time.Second,
		Linger:          5 * time.Millisecond,
		Retry:           2 * time.Second,
		ShutdownTimeout: 10 * time.Second,
	}
}

// DefaultTrustedProxies returns loopback and private address ranges, where
// load balancers and reverse proxies usually sit.
func DefaultTrustedProxies() []netip.Prefix {
	cidrs := []string{"127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"}
	ps := make([]netip.Prefix, len(cidrs))
	for i, s := range cidrs {
		ps[i] = netip.MustParsePrefix(s)
	}
	return ps
}

// ErrInvalidConfig is wrapped by every error Validate returns.
var ErrInvalidConfig = errors.New("server: invalid configuration")

// Validate checks c and returns an error naming the first bad setting.
func (c *Config) Validate() error {
	bad := func(setting, format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrInvalidConfig, setting, fmt.Sprintf(format, args...))
	}
	switch {
	case c.Addr == "":
		return bad("addr", "empty")
	case c.MaxBody < 2:
		return bad("max-body", "%d bytes is too small for a JSON object", c.MaxBody)
	case c.Buffer < 1:
		return bad("buffer", "must be at least 1, got %d", c.Buffer)
	case c.MaxListeners < 0:
		return bad("max-listeners", "must not be negative, got %d", c.MaxListeners)
	case c.Heartbeat <= 0:
		return bad("heartbeat", "must be positive, got %v", c.Heartbeat)
	case c.WriteTimeout <= 0:
		return bad("write-timeout", "must be positive, got %v", c.WriteTimeout)
	case c.Linger < 0 || c.Linger > time.Second:
		return bad("linger", "must be between 0 and 1s, got %v", c.Linger)
	case c.Retry <= 0:
		return bad("retry", "must be positive, got %v", c.Retry)
	case c.ShutdownTimeout <= 0:
		return bad("shutdown-timeout", "must be positive, got %v", c.ShutdownTimeout)
	case c.LagPolicy != LagContinue && c.LagPolicy != LagCut:
		return bad("lag-policy", "want %q or %q, got %q", LagContinue, LagCut, c.LagPolicy)
	case len(c.CORSOrigins) == 0:
		return bad("cors-origins", "empty (use * to allow any origin)")
	}
	for _, o := range c.CORSOrigins {
		if o == "*" && len(c.CORSOrigins) > 1 {
			return bad("cors-origins", "* cannot be combined with a list")
		}
		if o != "*" && !strings.Contains(o, "://") {
			return bad("cors-origins", "%q is not an origin (scheme://host[:port])", o)
		}
	}
	if !utf8.ValidString(c.IPField) {
		return bad("ip-field", "not valid UTF-8")
	}
	return nil
}
