package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/fanout"
	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/filter"
	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/topic"
)

// handleEvents is GET /events: one Server-Sent Events stream per listener.
//
// The listener is checked (token, topics), admitted (limits) and subscribed
// here, on the producer-facing server. With the default streamer, its
// connection and its stream are then handed over to the stream server (see
// Server and handOver), whose response writes the stream through fasthttp's
// own response path. With the hijack streamer, and for HTTP/1.0 listeners,
// the stream is written on the hijacked connection by the service itself.
//
// Everything the stream needs from the request is read here: fasthttp forbids
// touching the RequestCtx once the stream runs.
func (s *Server) handleEvents(ctx *fasthttp.RequestCtx) {
	http11 := ctx.Request.Header.IsHTTP11()
	grant, r := s.listenAccess(ctx)
	if r != nil {
		s.refuseListener(ctx, r)
		return
	}
	topics, err := topicParams(ctx.QueryArgs(), s.cfg.MaxListenerTopics)
	if err != nil {
		s.stats.turnedAway[TurnAwayInvalid].Add(1)
		writeError(ctx, fasthttp.StatusBadRequest, err.Error())
		return
	}
	if topics, r = subscription(grant, topics); r != nil {
		s.refuseListener(ctx, r)
		return
	}
	flt, err := filterParams(ctx.QueryArgs(), s.cfg.FilterLimits)
	if err != nil {
		s.stats.turnedAway[TurnAwayInvalid].Add(1)
		writeError(ctx, fasthttp.StatusBadRequest, err.Error())
		return
	}
	// The client, through trusted proxies, as user_ip: a per-address limit
	// must count it, not the proxy in front of many.
	who := listener{ip: s.clientIP(ctx)}
	if grant != nil {
		who.subject = grant.Subject()
	}
	if reason, ok := s.admit(who); !ok {
		s.turnAway(ctx, reason)
		return
	}
	st, err := s.newStream(ctx, who, topics, flt)
	if err != nil {
		s.release(who)
		reason := TurnAwayShutdown
		switch {
		case errors.Is(err, fanout.ErrTooManyTopics):
			reason = TurnAwayTopics
		case errors.Is(err, fanout.ErrTooManyFilters):
			reason = TurnAwayFilters
		}
		s.turnAway(ctx, reason)
		return
	}
	if grant != nil {
		st.expires = grant.Expires()
		st.allowed = grant.SubscribePatterns()
	}
	s.stats.connected.Add(1)
	h := &ctx.Response.Header
	h.SetContentType("text/event-stream")
	h.Set(fasthttp.HeaderCacheControl, "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	if s.cfg.Streamer == StreamWriter && http11 {
		s.handOver(ctx, st)
		return
	}
	if !http11 {
		// HTTP/1.0 has no chunked encoding: the stream is ended by closing
		// the connection.
		h.Set(fasthttp.HeaderConnection, "close")
		h.SetContentLength(-2)
	} else {
		h.Set(fasthttp.HeaderConnection, "keep-alive")
		h.SetContentLength(-1) // chunked
	}
	st.chunked = http11
	st.head = h.AppendBytes(nil)
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(st.hijacked)
}

// handOver passes an admitted listener's connection, with its stream, to the
// stream server. The producer-facing server reads request bodies as streams
// (so that memory follows what a client sends, not what it announces) and
// therefore keeps a read buffer for as long as a connection is served; the
// stream server does not read bodies, releases its read buffer once it has
// parsed the one tiny request it is given (handoffConn), and never reads the
// connection again. The stream's response headers (CORS ones included) go
// with it.
func (s *Server) handOver(ctx *fasthttp.RequestCtx, st *stream) {
	st.header = new(fasthttp.ResponseHeader)
	ctx.Response.Header.CopyTo(st.header)
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(hc net.Conn) {
		c, ok := asConn(hc)
		if !ok || !s.streamLn.push(&handoffConn{conn: c, stream: st, request: handoffRequest}) {
			// The stream server is shut down (or the connection is not
			// ours): the listener gets the end of its stream.
			st.setEnd(EndShutdown)
			st.finish()
			_ = hc.Close()
		}
	})
}

// serveHandedOver is the stream server's handler: it writes the stream of a
// listener handed over by handOver, through fasthttp's response path: the
// stream is the response's body, a streamBody, which fasthttp consumes with
// WriteTo on the connection's own goroutine (no pipe, no second goroutine).
func (s *Server) serveHandedOver(ctx *fasthttp.RequestCtx) {
	hc, ok := ctx.Conn().(*handoffConn)
	if !ok || hc.stream == nil {
		ctx.SetConnectionClose()
		writeError(ctx, fasthttp.StatusInternalServerError, "not a stream handed over")
		return
	}
	st := hc.stream
	hc.stream = nil
	st.header.CopyTo(&ctx.Response.Header)
	st.header = nil
	h := &ctx.Response.Header
	h.Set(fasthttp.HeaderConnection, "keep-alive")
	// Take over the write deadline from fasthttp's WriteTimeout (which would
	// otherwise end the stream WriteTimeout after it starts); the stream
	// extends it as it writes.
	_ = ctx.SetWriteDeadline(st.start.Add(s.cfg.WriteTimeout))
	ctx.SetBodyStream(&streamBody{st: st}, -1)
}

// topicParams returns the topic query parameters, each a topic name or a
// topic pattern (package topic: "player.*", "video.>"), validated, each
// once: at most limit.
func topicParams(args *fasthttp.Args, limit int) ([]string, error) {
	values := args.PeekMulti("topic")
	if len(values) == 0 {
		return nil, nil
	}
	topics := make([]string, 0, min(len(values), limit))
	for _, v := range values {
		if !topic.ValidPattern(string(v)) {
			return nil, errInvalidTopicPattern
		}
		if slices.Contains(topics, string(v)) {
			continue
		}
		if len(topics) == limit {
			return nil, fmt.Errorf(`too many "topic" parameters: at most %d per listener (max-topics-per-listener)`, limit)
		}
		topics = append(topics, string(v))
	}
	return topics, nil
}

var (
	errInvalidTopicPattern = errors.New(`invalid "topic" parameter: a name of 1 to 64 characters from A-Z a-z 0-9 . _ - ` +
		`(dots between non-empty segments), or a pattern where a segment may be * (any one segment) and the last > (the rest)`)
	errInvalidTopic = errors.New(`invalid "topic" parameter: a name of 1 to 64 characters from A-Z a-z 0-9 . _ - ` +
		`(dots between non-empty segments)`)
	errInvalidEvent = errors.New(`invalid "event" parameter: a name of 1 to 64 characters from A-Z a-z 0-9 . _ -`)
)

// listener is who a listener is, for the limits: its client's address (as
// user_ip says it) and its signed token's subject ("" without one).
type listener struct {
	ip      netip.Addr
	subject string
}

// admit reserves a listener slot, or says why the listener is turned away.
func (s *Server) admit(who listener) (TurnAwayReason, bool) {
	if s.state.Load() >= stateDraining {
		return TurnAwayShutdown, false
	}
	n := s.stats.listeners.Add(1)
	if s.cfg.MaxListeners > 0 && n > int64(s.cfg.MaxListeners) {
		s.stats.listeners.Add(-1)
		return TurnAwayLimit, false
	}
	if !s.perIP.Acquire(who.ip) {
		s.stats.listeners.Add(-1)
		return TurnAwayIPLimit, false
	}
	if who.subject != "" && !s.perSubject.Acquire(who.subject) {
		s.perIP.Release(who.ip)
		s.stats.listeners.Add(-1)
		return TurnAwaySubjectLimit, false
	}
	return 0, true
}

// release gives back a slot taken by admit.
func (s *Server) release(who listener) {
	if who.subject != "" {
		s.perSubject.Release(who.subject)
	}
	s.perIP.Release(who.ip)
	s.stats.listeners.Add(-1)
}

// refuseListener answers a listener refused from its request (a missing or
// invalid token, a topic its token does not allow).
func (s *Server) refuseListener(ctx *fasthttp.RequestCtx, r *refusal) {
	s.stats.turnedAway[r.turnAway].Add(1)
	if r.authenticate != "" {
		ctx.Response.Header.Set(fasthttp.HeaderWWWAuthenticate, r.authenticate)
	}
	writeError(ctx, r.status, r.msg)
}

var turnAwayComments = [numTurnAwayReasons]string{
	TurnAwayLimit:        "too many listeners",
	TurnAwayIPLimit:      "too many listeners from this address",
	TurnAwaySubjectLimit: "too many listeners for this token's subject",
	TurnAwayTopics:       "too many topics",
	TurnAwayFilters:      "too many distinct filters",
	TurnAwayShutdown:     "shutting down",
}

// turnAway answers a listener that gets no stream: 200 with a retry hint,
// never an error status nor another content type (EventSource gives up for
// good on those, and these conditions are temporary), and the end of the
// stream.
func (s *Server) turnAway(ctx *fasthttp.RequestCtx, reason TurnAwayReason) {
	s.stats.turnedAway[reason].Add(1)
	ctx.Response.Header.SetContentType("text/event-stream")
	ctx.Response.Header.Set(fasthttp.HeaderCacheControl, "no-cache")
	ctx.SetConnectionClose()
	ctx.SetBody(appendTurnedAway(nil, turnAwayComments[reason], s.retryMillis()))
}

// retryMillis returns the configured retry delay plus up to 100% jitter, so
// that listeners dropped together do not come back together.
func (s *Server) retryMillis() int64 {
	base := s.cfg.Retry.Milliseconds()
	return base + rand.Int64N(base+1) //nolint:gosec // jitter, not a secret
}

// The causes a stream's context is canceled with.
var (
	errHungUp    = errors.New("listener hung up")
	errConnGone  = errors.New("connection closed")
	errCutAtStop = errors.New("cut at shutdown")
)

// stream is one listener's state, owned by its stream goroutine but for the
// atomics, which metrics read.
type stream struct {
	start           time.Time
	ageEnd          time.Time // when the stream reaches its maximum age; zero: never
	deadlineRefresh time.Time // when to push the write deadline further
	writeDeadline   time.Time // the write deadline last set
	lastFlush       time.Time
	ctx             context.Context // canceled (with a cause) when the stream must stop
	cancel          context.CancelCauseFunc
	conn            *conn
	srv             *Server
	sub             *fanout.Subscriber
	resume          resumePlan
	head            []byte                   // the response head, for a hijacked stream
	header          *fasthttp.ResponseHeader // the response header, for a stream handed over
	who             listener
	expires         time.Time      // when its signed token expires; zero: never
	allowed         []string       // what its signed token allows it, for its greeting; nil without one
	filter          *filter.Filter // its filter, nil without one
	filteredOut     uint64         // its subscriber's FilteredOut already counted in stats
	unwatch         func()         // stops the watcher watching conn; nil if it does not
	delivered       atomic.Uint64
	written         atomic.Uint64
	cutAt           atomic.Int64 // Unix ns of the deadline set by cutNow; 0: not cut
	missed          uint64
	end             EndReason
	ended           bool // end is set
	writeFailed     bool // a flush failed: what is queued may be torn, the listener stuck
	chunked         bool // a hijacked HTTP/1.1 stream: chunked framing
	sampled         bool // its writes are timed for the fan-out latency histogram
}

// sampleEvery is one stream in how many whose fan-out latency is measured.
const sampleEvery = 64

var streamCount atomic.Uint64

// newStream subscribes a listener, resuming after its last event id if it
// gave one.
func (s *Server) newStream(ctx *fasthttp.RequestCtx, who listener, topics []string, flt *filter.Filter) (*stream, error) {
	c, _ := asConn(ctx.Conn())
	return s.openStream(c, who, lastEventID(ctx), topics, flt)
}

// openStream is newStream once the request is read: the listener's
// connection (nil in tests that give the stream a sink of their own), who it
// is, the id it resumes after (nil: none), its topics and its filter (nil:
// none).
func (s *Server) openStream(c *conn, who listener, lastID []byte, topics []string, flt *filter.Filter) (*stream, error) {
	st := &stream{
		srv:     s,
		conn:    c,
		who:     who,
		start:   time.Now(),
		sampled: streamCount.Add(1)%sampleEvery == 1,
	}
	if age := s.cfg.MaxStreamAge; age > 0 {
		// A random point between 80% and 100% of the age, so that streams
		// opened together do not end together.
		st.ageEnd = st.start.Add(age*4/5 + rand.N(age/5+1)) //nolint:gosec // jitter, not a secret
	}
	var err error
	st.sub, st.resume, err = s.subscribe(lastID, topics, flt)
	st.filter = flt
	if err != nil {
		return nil, err
	}
	st.ctx, st.cancel = context.WithCancelCause(context.Background())
	return st, nil
}

// lastEventID returns the id a listener resumes after: the Last-Event-ID
// header (sent by a reconnecting EventSource), else the lastEventId query
// parameter (for a first connection); nil if neither.
func lastEventID(ctx *fasthttp.RequestCtx) []byte {
	if id := ctx.Request.Header.Peek("Last-Event-ID"); len(id) > 0 {
		return bytes.TrimSpace(id)
	}
	return ctx.QueryArgs().Peek("lastEventId")
}
