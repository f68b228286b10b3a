// Package server is the Pillarbox Event Dispatcher's HTTP service: producers
// POST JSON events to /api/events, listeners receive them as Server-Sent
// Events from /events, and /health reports the service's state.
//
// Each event is validated and compacted once, built into its SSE frame once,
// and published to a [fanout.Ring] that the caller owns; every listener's
// stream writes those same bytes. See ../../README.md for the wire format and
// the configuration.
//
// # Two HTTP servers, one port
//
// The service is two fasthttp servers behind one listener. The first serves
// every request as it arrives; it streams request bodies, so that a POST costs
// what its producer sends rather than what it announces. A listener's
// GET /events is then handed, with its connection, to the second server (the
// stream server), configured for long streams: it does not stream request
// bodies, so it releases its read buffer as soon as the request is parsed and
// an idle listener holds no read buffer. With the hijack streamer, and for
// HTTP/1.0 listeners, the service writes the stream on the hijacked connection
// itself instead.
package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fasthttp/router"
	"github.com/valyala/fasthttp"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/auth"
	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/clientip"
	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/netguard"
	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/viewer"
	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/fanout"
)

// Watcher tells streams that their listener went away before a write to it
// fails (a listener that hangs up while no event comes would otherwise hold
// its stream until the next heartbeat). Watch calls onHangup once, from
// another goroutine, when conn's peer closes or resets it, until the stop
// it returned is called (which the stream does before conn is closed);
// onHangup does not block. An error means conn cannot be watched: the
// stream then notices at its next write. (On Linux, the application uses
// one epoll descriptor for every stream.)
type Watcher interface {
	Watch(conn net.Conn, onHangup func()) (stop func(), err error)
}

// Deps are what a [Server] uses but does not own: the caller creates them
// before the server. It closes the ring before [Server.Shutdown], so that
// streams end on a retry hint after what the ring holds, and the others
// after Shutdown returned.
type Deps struct {
	// Ring is the fan-out the server publishes to and streams from.
	// Required. Create it with DefaultTopic among Options.Permanent, so that
	// producers creating topics can never make the default topic refuse
	// events.
	Ring *fanout.Ring
	// Watcher tells streams that their listener went away; optional (without
	// it, a stream notices at its next write).
	Watcher Watcher
	// Log receives the service's logs; nil discards them.
	Log *slog.Logger
	// ObservePost, if set, is called with the handling time of every
	// POST /api/events.
	ObservePost func(time.Duration)
	// ObserveFanout, if set, is called with the time from an event's
	// acceptance to its write on a sampled stream.
	ObserveFanout func(time.Duration)
	// Metrics, if set, serves GET /metrics.
	Metrics fasthttp.RequestHandler
	// Tokens, if set, verifies signed tokens (JSON Web Tokens): producers
	// and listeners may then present one, which allows the topics its grant
	// lists (see Grant). Static tokens (Config.PublishTokens,
	// Config.ListenTokens) keep allowing everything.
	Tokens TokenVerifier
	// Bridge, if set, shares events with other instances: POSTs are
	// published to it, and the caller hands what it consumes to
	// Server.Deliver. Nil: this instance alone.
	Bridge Bridge
}

// Server is the HTTP service. Create it with [New], run it with
// [Server.Serve], stop it with [Server.Drain] and [Server.Shutdown]. It
// starts no goroutine before Serve. Its methods are safe for concurrent use.
type Server struct {
	started       time.Time
	ring          *fanout.Ring
	watcher       Watcher
	log           *slog.Logger
	observePost   func(time.Duration)
	observeFanout func(time.Duration)
	metrics       fasthttp.RequestHandler
	http          *fasthttp.Server // the producer-facing server
	streamHTTP    *fasthttp.Server // the stream server
	streamLn      *chanListener
	bridge        Bridge                // nil: a single instance
	epoch         atomic.Pointer[epoch] // the ids events are given now
	consumer      consumer
	cors          cors
	events        eventBuilder
	publishTokens *auth.Tokens
	listenTokens  *auth.Tokens
	tokens        TokenVerifier             // nil: no signed tokens
	perSubject    *netguard.Limiter[string] // listeners per token subject
	proxies       *clientip.Resolver
	perIP         *netguard.AddrLimiter
	accepts       atomic.Pointer[netguard.Listener]
	streams       streamSet
	tasks         tasks
	drains        drainSet
	served        sync.WaitGroup // the stream server's Serve
	lifecycle     sync.Mutex     // orders Serve's start and Shutdown's start
	serving       bool           // Serve started serving; guarded by lifecycle
	shutdown      bool           // Shutdown began; guarded by lifecycle
	state         atomic.Int32
	cfg           Config
	stats         stats
	warned        warnLimiter
	budget        *writeBudget
	// maxBatchEvents is Config.MaxBatchEvents, or its default for the ring.
	maxBatchEvents int
	// testHook, when set by an internal test, runs at the start of every
	// POST handler and of every stream, with its name: a way to make them
	// panic.
	testHook func(where string)
}

// Server states, in order.
const (
	stateStarting int32 = iota // created, not serving yet
	stateServing               // serving: ready
	stateDraining              // shutting down: answering 503 and retry hints
	stateStopped               // shut down
)

// New returns a server for a copy of cfg, which it validates, using deps. It
// starts nothing: see Serve.
func New(cfg *Config, deps Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Ring == nil {
		return nil, fmt.Errorf("%w: no ring", ErrInvalidConfig)
	}
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	events, err := newEventBuilder(cfg.IPField)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	s := &Server{
		started:       time.Now(),
		ring:          deps.Ring,
		watcher:       deps.Watcher,
		log:           deps.Log,
		observePost:   deps.ObservePost,
		observeFanout: deps.ObserveFanout,
		metrics:       deps.Metrics,
		cors:          newCORS(cfg.CORSOrigins),
		events:        events,
		proxies:       clientip.New(cfg.TrustedProxies),
		perIP:         netguard.NewAddrLimiter(cfg.MaxListenersPerIP),
		perSubject:    netguard.NewLimiter[string](cfg.MaxListenersPerSubject),
		tokens:        deps.Tokens,
		cfg:           *cfg,
	}
	if s.publishTokens, err = parseTokens("publish-token", cfg.PublishTokens); err != nil {
		return nil, err
	}
	if s.listenTokens, err = parseTokens("listen-token", cfg.ListenTokens); err != nil {
		return nil, err
	}
	s.warned = newWarnLimiter(s.log)
	s.streamLn = newChanListener()
	s.maxBatchEvents = cfg.MaxBatchEvents
	if s.maxBatchEvents == 0 {
		s.maxBatchEvents = max(deps.Ring.Size()/4, 1)
	}
	s.budget = newWriteBudget(cfg.WriteBudget, cfg.Linger, deps.Ring.Size(), deps.Ring.Last, new(cpuLoad).sample)
	if deps.Bridge != nil {
		s.bridge = deps.Bridge
		s.epoch.Store(&epoch{space: newRunSpace()}) // replaced by the stream's once known
	} else {
		s.epoch.Store(&epoch{space: newRunSpace()})
	}
	handler := s.routes()
	logger := fasthttpLogger{log: s.log}
	for _, tok := range slices.Concat(cfg.PublishTokens, cfg.ListenTokens) {
		logger.secrets = append(logger.secrets, []byte(tok))
	}
	s.http = &fasthttp.Server{
		Handler:      handler,
		ErrorHandler: s.handleParseError,
		// Every request with a body of two bytes or more reaches its handler
		// as a stream once its head is read (see body.go).
		StreamRequestBody:  true,
		MaxRequestBodySize: 1,
		ExpectHandler:      s.expect,
		KeepHijackedConns:  true, // a hijacked listener's connection is the stream's
		ReadBufferSize:     cfg.MaxHeaderBytes,
		ReadTimeout:        cfg.HeaderTimeout,
		WriteTimeout:       cfg.WriteTimeout,
		IdleTimeout:        cfg.IdleTimeout,
		// Release the buffers of idle connections.
		ReduceMemoryUsage:     true,
		NoDefaultServerHeader: true,
		NoDefaultContentType:  true,
		NoDefaultDate:         true,
		CloseOnShutdown:       true,
		Logger:                logger,
	}
	s.streamHTTP = &fasthttp.Server{
		Handler:      s.serveHandedOver,
		ErrorHandler: s.handleParseError,
		// It parses one request per connection, the few bytes of a
		// handoffConn; its write buffer only ever holds the response head
		// and the stream's first chunk (streamBody writes the rest on the
		// connection): the stream's idle memory.
		ReadBufferSize:        512,
		WriteBufferSize:       512,
		WriteTimeout:          cfg.WriteTimeout,
		ReduceMemoryUsage:     true,
		NoDefaultServerHeader: true,
		NoDefaultContentType:  true,
		NoDefaultDate:         true,
		CloseOnShutdown:       true,
		Logger:                logger,
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
	r.GET("/health/live", s.handleLive)
	r.GET("/health/ready", s.handleReady)
	if s.metrics != nil {
		r.GET("/metrics", s.metrics)
	}
	if s.cfg.Viewer {
		r.GET("/", viewer.Handler)
	}
	r.HandleOPTIONS = true
	r.GlobalOPTIONS = s.cors.preflight
	r.HandleMethodNotAllowed = true
	r.MethodNotAllowed = func(ctx *fasthttp.RequestCtx) {
		writeError(ctx, fasthttp.StatusMethodNotAllowed, "method not allowed")
	}
	r.NotFound = func(ctx *fasthttp.RequestCtx) {
		writeError(ctx, fasthttp.StatusNotFound, "not found")
	}
	r.PanicHandler = s.handlePanic
	handler := r.Handler
	return func(ctx *fasthttp.RequestCtx) {
		if problem := framingProblem(&ctx.Request.Header); problem != "" {
			// Proxies in front may disagree on where such a request ends
			// (request smuggling): refuse it, and close.
			drainOnClose(ctx.Conn())
			ctx.SetConnectionClose()
			if ctx.IsPost() {
				s.stats.rejected[RejectMalformed].Add(1)
			}
			writeError(ctx, fasthttp.StatusBadRequest, problem)
			return
		}
		if !s.cors.apply(ctx) {
			if ctx.IsPost() {
				s.stats.rejected[RejectForbidden].Add(1)
			}
			writeError(ctx, fasthttp.StatusForbidden, "origin not allowed")
			return
		}
		handler(ctx)
	}
}

// handlePanic answers a request whose handler panicked, once the panic is
// recovered: 500, logged once with its stack; the process keeps serving.
func (s *Server) handlePanic(ctx *fasthttp.RequestCtx, v any) {
	s.stats.panics.Add(1)
	s.log.Error("handler panic", "panic", v, "path", string(ctx.Path()), "stack", stack())
	ctx.Response.Reset()
	s.cors.apply(ctx)
	ctx.SetConnectionClose()
	writeError(ctx, fasthttp.StatusInternalServerError, "internal error")
}

// expect answers "Expect: 100-continue": a POST is refused from its head,
// before its body is sent, when it would be refused anyway.
func (s *Server) expect(ctx *fasthttp.RequestCtx) int {
	if !isPublish(&ctx.Request.Header) {
		return fasthttp.StatusContinue
	}
	_, r := s.checkPublish(ctx)
	if r == nil {
		return fasthttp.StatusContinue
	}
	s.cors.apply(ctx)
	s.setRefusalHeaders(ctx, r)
	s.reject(ctx, r.reason, r.status, r.msg)
	return r.status
}

// framingProblem says what is wrong with how a request's head frames its
// body, "" if nothing: a Transfer-Encoding other than exactly "chunked"
// (once), or one with a Content-Length too.
func framingProblem(h *fasthttp.RequestHeader) string {
	var te, cl int
	var coding []byte
	for line := range bytes.SplitSeq(h.RawHeaders(), []byte("\n")) {
		name, value, ok := bytes.Cut(line, []byte{':'})
		if !ok {
			continue
		}
		switch name = bytes.TrimSpace(name); {
		case len(name) == len("transfer-encoding") && asciiEqualFold(name, "transfer-encoding"):
			te++
			coding = bytes.TrimSpace(value)
		case len(name) == len("content-length") && asciiEqualFold(name, "content-length"):
			cl++
		}
	}
	switch {
	case te == 0:
		return ""
	case te > 1 || len(coding) != len("chunked") || !asciiEqualFold(coding, "chunked"):
		return `unsupported Transfer-Encoding: only "chunked" is accepted`
	case cl > 0:
		return "both Content-Length and Transfer-Encoding"
	}
	return ""
}

// isPublish reports whether a request head is POST /api/events.
func isPublish(h *fasthttp.RequestHeader) bool {
	if !h.IsPost() {
		return false
	}
	path, _, _ := bytes.Cut(h.RequestURI(), []byte{'?'})
	return string(path) == "/api/events"
}

// Serve accepts connections on ln until Shutdown, and marks the service ready.
// It returns nil after a shutdown and the listener's error otherwise. Serve
// and Shutdown may be called in either order, also concurrently: a Serve
// called after Shutdown has begun closes ln and returns nil at once, as
// net/http's does (after Drain alone, Serve serves, answering as a draining
// service does).
func (s *Server) Serve(ln net.Listener) error {
	s.lifecycle.Lock()
	if s.shutdown {
		s.lifecycle.Unlock()
		_ = ln.Close()
		return nil
	}
	// Running out of descriptors must not end Serve: fasthttp treats any
	// accept error but a timeout as fatal, so temporary ones are retried
	// below it, with a back-off.
	accepts := netguard.NewListener(ln, netguard.Options{Logger: s.log})
	s.accepts.Store(accepts)
	s.serving = true
	s.served.Add(1)
	go func() {
		defer s.served.Done()
		_ = s.streamHTTP.Serve(s.streamLn) // returns once streamLn is closed
	}()
	s.state.CompareAndSwap(stateStarting, stateServing)
	s.lifecycle.Unlock()

	err := s.http.Serve(connListener{Listener: accepts, drains: &s.drains})
	if s.state.Load() < stateDraining {
		// The listener failed on its own: stop the stream server too.
		_ = s.streamLn.Close()
	}
	if err != nil && s.state.Load() >= stateDraining && errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// Drain starts a shutdown: from now on the service is not ready, POSTs get 503
// with "Connection: close", and new listeners get a retry hint and the end of
// their stream. Streams already open go on until the ring is closed (they
// then end cleanly) or Shutdown cuts them. Drain is idempotent.
func (s *Server) Drain() {
	for {
		st := s.state.Load()
		if st >= stateDraining || s.state.CompareAndSwap(st, stateDraining) {
			return
		}
	}
}

// Shutdown stops the service, within ctx's deadline: it drains (see Drain);
// keeps answering on open connections for the drain grace (or until none is
// left), so that producers and listeners get an answer rather than a reset;
// cuts the streams still running (those whose listener stopped reading);
// then stops both HTTP servers, closing their connections. Close the ring
// before calling it, so that streams end on a retry hint after delivering
// what the ring holds. It returns ctx's error if the deadline passed first
// (connections still open were then closed).
func (s *Server) Shutdown(ctx context.Context) error {
	s.Drain()
	s.lifecycle.Lock()
	s.shutdown = true // a Serve from now on returns at once
	serving := s.serving
	s.lifecycle.Unlock()
	if serving {
		s.waitGrace(ctx)
	}
	s.streams.each(func(st *stream) { st.cutNow() })
	var errs []error
	if err := s.http.ShutdownWithContext(ctx); err != nil {
		errs = append(errs, fmt.Errorf("shutdown: %w", err))
	}
	if l := s.accepts.Load(); l != nil {
		// fasthttp's shutdown closes the listeners it knows of: one that
		// Serve had not handed to it yet is closed here, so that Serve
		// returns.
		_ = l.Close()
	}
	if serving {
		if err := s.streamHTTP.ShutdownWithContext(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stream server shutdown: %w", err))
		}
	}
	_ = s.streamLn.Close()
	select {
	case <-s.tasks.stop():
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("hijacked streams: %w", ctx.Err()))
	}
	s.drains.stop()
	s.served.Wait()
	s.state.Store(stateStopped)
	return errors.Join(errs...)
}

// waitGrace waits for the drain grace, a third of what is left of ctx at
// most, or until no connection and no stream is left.
func (s *Server) waitGrace(ctx context.Context) {
	grace := s.cfg.DrainGrace
	if d, ok := ctx.Deadline(); ok {
		grace = min(grace, time.Until(d)/3)
	}
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if s.http.GetOpenConnectionsCount() == 0 && s.streams.len() == 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// AcceptRetries returns how many times accepting a connection failed for lack
// of resources (descriptors, memory) and was retried.
func (s *Server) AcceptRetries() uint64 {
	if l := s.accepts.Load(); l != nil {
		return l.Retries()
	}
	return 0
}

// Listeners returns the number of listeners streaming now.
func (s *Server) Listeners() int { return int(s.stats.listeners.Load()) }

// Ready reports whether the service is serving, not shutting down, and, with
// a bridge, able to share events with the other instances.
func (s *Server) Ready() bool { return s.notReady() == "" }

// handleParseError answers requests fasthttp could not read: heads over the
// limit (431), requests not received in time (408) and malformed requests
// (400). fasthttp closes the connection afterwards.
func (s *Server) handleParseError(ctx *fasthttp.RequestCtx, err error) {
	s.cors.apply(ctx)
	drainOnClose(ctx.Conn())
	var small *fasthttp.ErrSmallBuffer
	var timeout interface{ Timeout() bool }
	switch {
	case errors.As(err, &small):
		s.reject(ctx, RejectMalformed, fasthttp.StatusRequestHeaderFieldsTooLarge,
			fmt.Sprintf("request head larger than %d bytes", s.cfg.MaxHeaderBytes))
	case errors.As(err, &timeout) && timeout.Timeout():
		s.reject(ctx, RejectTimeout, fasthttp.StatusRequestTimeout, "request timeout")
	default:
		s.reject(ctx, RejectMalformed, fasthttp.StatusBadRequest, "malformed request")
	}
}

// fasthttpLogger sends fasthttp's own messages to slog at debug level, with
// every credential they may quote redacted (a request head it could not
// parse is quoted whole): see auth.RedactText. secrets are the configured
// tokens.
type fasthttpLogger struct {
	log     *slog.Logger
	secrets [][]byte
}

func (l fasthttpLogger) Printf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.log.Debug("fasthttp", "message", auth.RedactText([]byte(msg), l.secrets...))
}
