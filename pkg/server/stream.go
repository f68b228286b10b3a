package server

import (
	"bufio"
	"context"
	"errors"
	"net"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/hangup"
	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/fanout"
)

// batchSize is how many frames a stream takes from the ring per Read; it
// keeps reading until nothing is ready before it flushes.
const batchSize = 64

// handleEvents is GET /events: one Server-Sent Events stream per listener.
//
// Everything the stream needs from the request is read here: fasthttp forbids
// touching the RequestCtx once the stream writer runs.
func (s *Server) handleEvents(ctx *fasthttp.RequestCtx) {
	h := &ctx.Response.Header
	h.SetContentType("text/event-stream")
	h.Set(fasthttp.HeaderCacheControl, "no-cache")
	h.Set(fasthttp.HeaderConnection, "keep-alive")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream

	if reason := s.admit(); reason != "" {
		// 200 with a retry hint, never an error status: EventSource gives
		// up for good on those, and this condition is temporary.
		s.stats.turnedAway.Add(1)
		ctx.SetConnectionClose()
		body := append([]byte(": "), reason...)
		ctx.SetBody(appendRetry(append(body, '\n'), s.retryMillis()))
		return
	}
	st := &stream{
		srv:    s,
		sub:    s.ring.Subscribe(),
		conn:   ctx.Conn(),
		remote: ctx.RemoteAddr().String(),
		start:  time.Now(),
	}
	st.ctx, st.cancel = context.WithCancel(context.Background())
	// Take over the write deadline from fasthttp's WriteTimeout (which would
	// otherwise end the stream WriteTimeout after it starts); the stream
	// extends it as it writes.
	_ = ctx.SetWriteDeadline(st.start.Add(s.cfg.WriteTimeout))
	st.deadlineRefresh = st.start.Add(s.cfg.WriteTimeout / 2)
	ctx.SetBodyStreamWriter(st.run)
}

// admit reserves a listener slot, or returns why the listener is turned away.
func (s *Server) admit() string {
	if s.closing.Load() {
		return "shutting down"
	}
	n := s.stats.listeners.Add(1)
	if s.cfg.MaxListeners > 0 && n > int64(s.cfg.MaxListeners) {
		s.stats.listeners.Add(-1)
		return "too many listeners"
	}
	s.stats.connected.Add(1)
	return ""
}

// stream is one listener's state, owned by its stream-writer goroutine.
type stream struct {
	start           time.Time
	deadlineRefresh time.Time // when to push the write deadline further
	lastFlush       time.Time
	ctx             context.Context // canceled when the peer hangs up
	conn            net.Conn
	srv             *Server
	sub             *fanout.Subscriber
	cancel          context.CancelFunc
	remote          string
	end             string // why the stream ended, for the log
	reg             hangup.Registration
	missed          uint64
}

// run is the stream writer: greeting, then frames as they come, a heartbeat
// after each idle interval, and a retry hint at shutdown. It returns on the
// first write error, when the peer hangs up, or when the ring is closed.
func (st *stream) run(w *bufio.Writer) {
	s := st.srv
	defer st.finish()
	defer func() {
		// fasthttp does not recover panics in stream writers: one here
		// must not take the process down.
		if v := recover(); v != nil {
			st.end = "panic"
			s.log.Error("stream panic", "panic", v, "remote", st.remote)
		}
	}()
	if s.watcher != nil {
		if reg, err := s.watcher.Add(st.conn, st.cancel); err == nil {
			st.reg = reg
		}
	}
	s.log.Debug("listener connected", "remote", st.remote, "listeners", s.stats.listeners.Load())

	_, _ = w.WriteString(greeting)
	if st.flush(w) != nil {
		return
	}
	var frames [batchSize]*fanout.Frame
	for {
		n, cut := st.fill(w, frames[:0])
		// Adaptive linger: a stream that found several events waiting, or
		// flushed very recently, is busy; gathering a little longer makes
		// fewer, bigger writes, and write(2) is most of the cost of a
		// delivery. A stream that found one event after a pause writes it
		// at once.
		if n > 0 && !cut && s.cfg.Linger > 0 && (n > 1 || time.Since(st.lastFlush) < s.cfg.Linger) {
			time.Sleep(s.cfg.Linger)
			_, cut = st.fill(w, frames[:0])
		}
		if cut {
			_ = st.flush(w)
			return
		}
		if n > 0 {
			if st.flush(w) != nil {
				return
			}
			continue
		}

		idle := s.cfg.Heartbeat - time.Since(st.lastFlush)
		var err error
		if idle > 0 {
			err = st.sub.Wait(st.ctx, idle)
		} else {
			err = fanout.ErrTimeout
		}
		switch {
		case err == nil:
		case errors.Is(err, fanout.ErrTimeout):
			_, _ = w.WriteString(heartbeat)
			if st.flush(w) != nil {
				return
			}
		case errors.Is(err, fanout.ErrClosed):
			st.end = "shutdown"
			var buf [32]byte
			_, _ = w.Write(appendRetry(buf[:0], s.retryMillis()))
			_ = st.flush(w)
			return
		default: // the hang-up watcher canceled the context
			st.end = "gone"
			return
		}
	}
}

// fill writes every ready frame to w, reading them in batches of
// cap(batch), and returns how many it wrote. It reports cut when the listener
// lagged and the policy is to cut it; the gap event is written either way.
func (st *stream) fill(w *bufio.Writer, batch []*fanout.Frame) (n int, cut bool) {
	for {
		var missed uint64
		batch, missed = st.sub.Read(batch[:0])
		if missed > 0 {
			var buf [48]byte
			_, _ = w.Write(appendGap(buf[:0], missed))
			if st.lagged(missed) {
				return n, true
			}
		}
		for _, f := range batch {
			_, _ = w.Write(f.Bytes())
		}
		n += len(batch)
		if len(batch) < cap(batch) {
			return n, false
		}
	}
}

// lagged records that the listener missed events and reports whether it is
// to be cut. It logs once per listener, not once per gap.
func (st *stream) lagged(missed uint64) bool {
	s := st.srv
	s.stats.lagged.Add(1)
	if st.missed == 0 {
		s.log.Warn("listener lagged behind the buffer", "remote", st.remote, "missed", missed,
			"buffer", s.ring.Size(), "policy", s.cfg.LagPolicy)
	}
	st.missed += missed
	if s.cfg.LagPolicy == LagCut {
		st.end = "lagged"
		return true
	}
	return false
}

// flush sends what w holds, first pushing the connection's write deadline
// forward (at most once per half timeout, so busy streams do not pay for it
// on every flush). A listener that stops reading makes the connection's
// write fail at the deadline, and fasthttp then closes it.
func (st *stream) flush(w *bufio.Writer) error {
	now := time.Now()
	if now.After(st.deadlineRefresh) {
		timeout := st.srv.cfg.WriteTimeout
		_ = st.conn.SetWriteDeadline(now.Add(timeout))
		st.deadlineRefresh = now.Add(timeout / 2)
	}
	st.lastFlush = now
	if err := w.Flush(); err != nil {
		switch {
		case st.end != "":
		case st.ctx.Err() != nil:
			st.end = "gone" // the watcher saw the hang-up first
		default:
			st.end = "write failed"
		}
		return err
	}
	return nil
}

// finish releases the listener: its subscription, its hang-up watch, its
// slot in the listener count.
func (st *stream) finish() {
	s := st.srv
	st.cancel()
	if s.watcher != nil {
		s.watcher.Remove(st.reg)
	}
	_ = st.sub.Close()
	n := s.stats.listeners.Add(-1)
	attrs := []any{"remote", st.remote, "reason", st.end, "duration", time.Since(st.start).Round(time.Millisecond),
		"missed", st.missed, "listeners", n}
	switch st.end {
	case "write failed", "lagged":
		s.stats.cut.Add(1)
		s.log.Warn("listener cut", attrs...)
	default:
		s.log.Debug("listener disconnected", attrs...)
	}
}
