package server

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/filter"
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
	// reconnects after its retry delay (and, with resume, gets what is still
	// held).
	LagCut LagPolicy = "cut"
)

// Streamer says how a listener's stream is written.
type Streamer string

// Streamers.
const (
	// StreamWriter, the default, gives fasthttp the stream as the
	// response's body (a fasthttp.BodyWriterTo): fasthttp writes the
	// response on the connection's goroutine, one chunk per batch, without
	// SetBodyStreamWriter's pipe.
	StreamWriter Streamer = "writer"
	// StreamHijack writes the stream on the hijacked connection with one
	// goroutine, no pipe and a write buffer held only while writing: less
	// memory and CPU per listener, for very many listeners.
	StreamHijack Streamer = "hijack"
)

// Config is the service's configuration. The zero value is not valid: start
// from [DefaultConfig].
type Config struct {
	// Addr is the TCP address to listen on, host:port (host may be empty).
	Addr string
	// IPField is the name of the top-level field that receives the
	// producer's IP address; empty turns enrichment off.
	IPField string
	// PublishTokens, when not empty, are the bearer tokens accepted on
	// POST /api/events ("Authorization: Bearer <token>"); several allow
	// rotation.
	PublishTokens []string
	// ListenTokens, when not empty, are the tokens accepted on GET /events:
	// as a bearer token, a "token" query parameter or a "dispatcher_token"
	// cookie.
	ListenTokens []string
	// MaxListenersPerSubject bounds concurrent listeners per signed token
	// subject (Grant.Subject); 0 means no bound.
	MaxListenersPerSubject int
	// LagPolicy is what happens to a listener that fell behind the buffer.
	LagPolicy LagPolicy
	// Streamer is how streams are written.
	Streamer Streamer
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
	// MaxBatch is the largest accepted NDJSON batch body, in bytes.
	MaxBatch int
	// MaxBatchEvents is the most events an NDJSON batch may hold; 0 means a
	// quarter of the ring's size (a batch bigger than the ring would only
	// make every listener miss most of it).
	MaxBatchEvents int
	// MaxListenerTopics is the most topics one listener may ask for.
	MaxListenerTopics int
	// FilterLimits bound a listener's filter (its "where" terms, their paths
	// and values); zero fields take filter.DefaultLimits'.
	FilterLimits filter.Limits
	// TopicField, when not empty, names the top-level string field whose
	// value is the topic of an event posted without a topic parameter (the
	// default topic when the field is absent or not a valid topic name).
	TopicField string
	// SendBuffer, when positive, caps the kernel's send buffer of each
	// listener's connection (SO_SNDBUF), so that a listener that stops
	// reading holds at most about that much kernel memory until it is cut.
	// 0 leaves the kernel's own sizing.
	SendBuffer int
	// MaxHeaderBytes bounds a request's head (request line and headers).
	MaxHeaderBytes int
	// MaxListeners bounds concurrent listeners; 0 means no bound.
	MaxListeners int
	// MaxListenersPerIP bounds concurrent listeners per client address; 0
	// means no bound.
	MaxListenersPerIP int
	// Heartbeat is the idle interval after which a stream gets a comment.
	Heartbeat time.Duration
	// WriteTimeout bounds each write to a listener: one that stops reading
	// is cut after at most this long.
	WriteTimeout time.Duration
	// HeaderTimeout bounds the reading of a request, head and body, and the
	// wait for the first byte of a new connection: a slow client cannot hold
	// a connection with a request it never finishes. Streams are not
	// affected once they started.
	HeaderTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle this long.
	IdleTimeout time.Duration
	// Linger is the longest a busy stream gathers events before it writes
	// them (see WriteBudget). 0: streams always write at once.
	Linger time.Duration
	// WriteBudget decides how long busy streams gather events before they
	// write them (up to Linger): AutoWriteBudget (the default) as the
	// machine's spare CPU allows (they gather longer when it is short, less
	// when it is not, see budget.go); a positive number, so that the streams
	// make at most about that many write calls per second in all; 0: never
	// (every stream writes at once). A stream that is not busy (it found one
	// event after a pause) writes at once whatever the budget.
	WriteBudget int
	// Retry is the reconnection delay suggested to listeners; each gets
	// Retry plus up to 100% random jitter.
	Retry time.Duration
	// NoQueryToken refuses listen tokens in the "token" query parameter
	// (for deployments that forbid secrets in URLs): only the bearer token
	// and the cookie count.
	NoQueryToken bool
	// Replay turns resume with Last-Event-ID on (the default).
	Replay bool
	// Viewer serves the live viewer page on GET /; false leaves / unrouted
	// (404).
	Viewer bool
	// MaxStreamAge, when positive, ends a stream cleanly at a random point
	// between 80% and 100% of this age, so that long-lived listeners spread
	// over instances behind a load balancer.
	MaxStreamAge time.Duration
	// DrainGrace is how long, at shutdown, the service keeps answering on
	// open connections (503 to POSTs, a retry hint to listeners) before it
	// closes them.
	DrainGrace time.Duration
}

// DefaultConfig returns the defaults: port 8080, 64 KiB bodies, 1 MiB
// batches, 16 KiB request heads, 15 s heartbeat, any origin, user_ip
// enrichment, X-Forwarded-For trusted from loopback only, resume on.
func DefaultConfig() Config {
	return Config{
		Addr:              ":8080",
		IPField:           "user_ip",
		LagPolicy:         LagContinue,
		Streamer:          StreamWriter,
		Version:           "dev",
		CORSOrigins:       []string{"*"},
		TrustedProxies:    DefaultTrustedProxies(),
		MaxBody:           64 << 10,
		MaxBatch:          1 << 20,
		MaxListenerTopics: DefaultMaxListenerTopics,
		SendBuffer:        DefaultSendBuffer,
		MaxHeaderBytes:    16 << 10,
		MaxListeners:      50_000,
		Heartbeat:         15 * time.Second,
		WriteTimeout:      10 * time.Second,
		HeaderTimeout:     10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		Linger:            50 * time.Millisecond,
		WriteBudget:       AutoWriteBudget,
		Retry:             2 * time.Second,
		Replay:            true,
		DrainGrace:        time.Second,
		Viewer:            true,
	}
}

// Defaults for [Config].
const (
	// DefaultMaxListenerTopics is Config.MaxListenerTopics' default.
	DefaultMaxListenerTopics = 100
	// DefaultSendBuffer is Config.SendBuffer's default: see SECURITY.md for
	// how it was sized.
	DefaultSendBuffer = 64 << 10
)

// DefaultTrustedProxies returns the loopback ranges: a reverse proxy on the
// same host. Proxies elsewhere must be listed explicitly: trusting a range
// means believing what any machine in it writes in X-Forwarded-For.
func DefaultTrustedProxies() []netip.Prefix {
	return []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
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
	case c.MaxBatch < 2:
		return bad("max-batch", "%d bytes is too small for a JSON object", c.MaxBatch)
	case c.MaxBatchEvents < 0:
		return bad("max-batch-events", "must not be negative, got %d", c.MaxBatchEvents)
	case c.MaxListenerTopics < 1:
		return bad("max-topics-per-listener", "must be at least 1, got %d", c.MaxListenerTopics)
	case c.SendBuffer < 0 || c.SendBuffer > 0 && c.SendBuffer < 4096:
		return bad("send-buffer", "must be 0 (the kernel's sizing) or at least 4096 bytes, got %d", c.SendBuffer)
	case c.MaxHeaderBytes < 1024:
		return bad("max-header-bytes", "must be at least 1024, got %d", c.MaxHeaderBytes)
	case c.MaxListeners < 0:
		return bad("max-listeners", "must not be negative, got %d", c.MaxListeners)
	case c.MaxListenersPerIP < 0:
		return bad("max-listeners-per-ip", "must not be negative, got %d", c.MaxListenersPerIP)
	case c.MaxListenersPerSubject < 0:
		return bad("max-listeners-per-subject", "must not be negative, got %d", c.MaxListenersPerSubject)
	case c.Heartbeat <= 0:
		return bad("heartbeat", "must be positive, got %v", c.Heartbeat)
	case c.WriteTimeout <= 0:
		return bad("write-timeout", "must be positive, got %v", c.WriteTimeout)
	case c.HeaderTimeout <= 0:
		return bad("header-timeout", "must be positive, got %v", c.HeaderTimeout)
	case c.IdleTimeout <= 0:
		return bad("idle-timeout", "must be positive, got %v", c.IdleTimeout)
	case c.Linger < 0 || c.Linger > time.Second:
		return bad("linger", "must be between 0 and 1s, got %v", c.Linger)
	case c.WriteBudget < AutoWriteBudget:
		return bad("write-budget", "must be auto, 0 or a positive number, got %d", c.WriteBudget)
	case c.Retry <= 0:
		return bad("retry", "must be positive, got %v", c.Retry)
	case c.MaxStreamAge < 0:
		return bad("max-stream-age", "must not be negative, got %v", c.MaxStreamAge)
	case c.MaxStreamAge > 0 && c.MaxStreamAge < time.Second:
		return bad("max-stream-age", "must be 0 (off) or at least 1s, got %v", c.MaxStreamAge)
	case c.DrainGrace < 0:
		return bad("drain-grace", "must not be negative, got %v", c.DrainGrace)
	case c.LagPolicy != LagContinue && c.LagPolicy != LagCut:
		return bad("lag-policy", "want %q or %q, got %q", LagContinue, LagCut, c.LagPolicy)
	case c.Streamer != StreamWriter && c.Streamer != StreamHijack:
		return bad("streamer", "want %q or %q, got %q", StreamWriter, StreamHijack, c.Streamer)
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
	if !utf8.ValidString(c.TopicField) {
		return bad("topic-field", "not valid UTF-8")
	}
	return nil
}
