// Package server is the Pillarbox Event Dispatcher's HTTP service: producers
// POST JSON events to /api/events, listeners receive them as Server-Sent
// Events from /events, and /health reports the service's state.
//
// Each event is validated and compacted once, built into its SSE frame once,
// and published to a [fanout.Ring]; every listener's stream writes those same
// bytes. See ../../README.md for the wire format and the configuration.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync/atomic"
	"time"

	"github.com/fasthttp/router"
	"github.com/valyala/fasthttp"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/hangup"
	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/fanout"
)

// Server is the HTTP service. Create it with [New], run it with
// [Server.Serve], stop it with [Server.Shutdown]. Its methods are safe for
// concurrent use.
type Server struct {
	started time.Time
	ring    *fanout.Ring
	http    *fasthttp.Server
	watcher *hangup.Watcher // nil where hang-up detection is unsupported
	log     *slog.Logger
	cors    cors
	events  eventBuilder
	cfg     Config
	stats   stats
	closing atomic.Bool
	token   tokenCheck
}

// stats are the service's counters. Each is updated with one atomic add, never
// per listener per event.
type stats struct {
	accepted   atomic.Uint64 // events published
	rejected   atomic.Uint64 // POSTs refused (4xx, 503)
	listeners  atomic.Int64  // listeners streaming now
	connected  atomic.Uint64 // listeners ever accepted
	turnedAway atomic.Uint64 // listeners refused: over the limit or shutting down
	lagged     atomic.Uint64 // gap events sent
	cut        atomic.Uint64 // listeners ended for lagging or a failed write
}

// New returns a server for cfg, which it validates. log receives the
// service's logs; nil discards them.
func New(cfg Config, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	events, err := newEventBuilder(cfg.IPField)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	s := &Server{
		ring:    fanout.New(fanout.Options{Size: cfg.Buffer}),
		log:     log,
		started: time.Now(),
		events:  events,
		cors:    newCORS(cfg.CORSOrigins),
		token:   newTokenCheck(cfg.PublishToken),
		cfg:     cfg,
	}
	if w, err := hangup.New(); err == nil {
		s.watcher = w
	} else {
		log.Info("hang-up detection unavailable; gone listeners are noticed at their next write", "error", err)
	}
	s.http = &fasthttp.Server{
		Handler:            s.routes(),
		ErrorHandler:       s.handleParseError,
		MaxRequestBodySize: cfg.MaxBody,
		ReadTimeout:        30 * time.Second,
		WriteTimeout:       cfg.WriteTimeout,
		IdleTimeout:        2 * time.Minute,
		// A stream's chunks are at most 4 KiB (fasthttp copies the stream
		// through a 4 KiB buffer); with room for the chunk's size line and
		// CRLF, a full chunk goes out in one write instead of two.
		WriteBufferSize:       4096 + 32,
		ReduceMemoryUsage:     true, // release read buffers of idle and streaming connections
		NoDefaultServerHeader: true,
		NoDefaultContentType:  true,
		NoDefaultDate:         true,
		CloseOnShutdown:       true,
		Logger:                fasthttpLogger{log},
	}
	return s, nil
}

func (s *Server) routes() fasthttp.RequestHandler {
	r := router.New()
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	r.POST("/api/events", s.handlePublish)
	r.GET("/events", s.handleEvents)
	r.GET("/health", s.handleHealth)
	r.HandleOPTIONS = true
	r.GlobalOPTIONS = s.cors.preflight
	r.HandleMethodNotAllowed = true
	r.MethodNotAllowed = func(ctx *fasthttp.RequestCtx) {
		writeError(ctx, fasthttp.StatusMethodNotAllowed, "method not allowed")
	}
	r.NotFound = func(ctx *fasthttp.RequestCtx) {
		writeError(ctx, fasthttp.StatusNotFound, "not found")
	}
	r.PanicHandler = func(ctx *fasthttp.RequestCtx, v any) {
		s.log.Error("handler panic", "panic", v, "path", string(ctx.Path()))
		ctx.Response.Reset()
		s.cors.apply(ctx)
		writeError(ctx, fasthttp.StatusInternalServerError, "internal error")
	}
	handler := r.Handler
	return func(ctx *fasthttp.RequestCtx) {
		if !s.cors.apply(ctx) {
			writeError(ctx, fasthttp.StatusForbidden, "origin not allowed")
			return
		}
		handler(ctx)
	}
}

// Serve accepts connections on ln until Shutdown. It returns nil after a
// shutdown and the listener's error otherwise.
func (s *Server) Serve(ln net.Listener) error {
	return s.http.Serve(lingerListener{ln})
}

// Shutdown stops the service gracefully, in this order: new POSTs get 503 and
// new listeners a retry hint; every stream is told to end (the ring is
// closed), writes what it was given and a retry hint, and finishes on a
// complete frame; then the HTTP server stops accepting and waits for open
// connections, until ctx is done.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closing.Store(true)
	_ = s.ring.Close()
	err := s.http.ShutdownWithContext(ctx)
	if s.watcher != nil {
		_ = s.watcher.Close()
	}
	return err
}

// Listeners returns the number of listeners streaming now.
func (s *Server) Listeners() int { return int(s.stats.listeners.Load()) }

// retryMillis returns the configured retry delay plus up to 100% jitter, so
// that listeners dropped together do not come back together.
func (s *Server) retryMillis() int64 {
	base := s.cfg.Retry.Milliseconds()
	return base + rand.Int64N(base+1) //nolint:gosec // jitter, not a secret

}

// writeError sends a JSON error body {"error":"<msg>"}. msg must not need
// JSON escaping beyond what quoting it does.
func writeError(ctx *fasthttp.RequestCtx, status int, msg string) {
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	body := append(make([]byte, 0, len(msg)+16), `{"error":`...)
	body = appendJSONString(body, msg)
	ctx.SetBody(append(body, '}'))
}

// handleParseError answers requests fasthttp could not read: bodies over the
// limit (413) and malformed requests (400). fasthttp closes the connection
// afterwards.
func (s *Server) handleParseError(ctx *fasthttp.RequestCtx, err error) {
	s.cors.apply(ctx)
	s.stats.rejected.Add(1)
	if errors.Is(err, fasthttp.ErrBodyTooLarge) {
		lingerOnClose(ctx.Conn()) // the client may still be sending the body
		writeError(ctx, fasthttp.StatusRequestEntityTooLarge,
			fmt.Sprintf("body larger than %d bytes", s.cfg.MaxBody))
		return
	}
	var timeout interface{ Timeout() bool }
	if errors.As(err, &timeout) && timeout.Timeout() {
		writeError(ctx, fasthttp.StatusRequestTimeout, "request timeout")
		return
	}
	writeError(ctx, fasthttp.StatusBadRequest, "malformed request")
}

// fasthttpLogger sends fasthttp's own messages to slog at debug level.
type fasthttpLogger struct{ log *slog.Logger }

func (l fasthttpLogger) Printf(format string, args ...any) {
	l.log.Debug("fasthttp", "message", fmt.Sprintf(format, args...))
}
