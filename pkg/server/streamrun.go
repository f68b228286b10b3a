package server

import (
	"context"
	"errors"
	"io"
	"net"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/fanout"
)

// batchSize is how many frames a stream takes from the ring per Read; it
// keeps reading until nothing is ready before it flushes.
const batchSize = 64

// batchPool holds the arrays streams read frames into: off the stream
// goroutine's stack, so that an idle stream's stack stays small.
var batchPool = sync.Pool{New: func() any { return new([batchSize]*fanout.Frame) }}

// sink is where a stream's bytes go: a connWriter, on the connection
// itself. Writes are buffered; Flush sends them.
type sink interface {
	io.Writer
	Flush() error
	Buffered() int
}

// streamBody is a stream as the body of the stream server's response:
// fasthttp consumes it with WriteTo (it implements fasthttp.BodyWriterTo), on
// the connection's own goroutine, after writing the response head.
//
// WriteTo runs the stream. Its first write (the greeting) goes through w,
// fasthttp's chunked body writer, which sends it as one chunk with the
// response head, in one write call; the stream's later batches are written
// on the connection by a connWriter, one chunk of at most maxChunk bytes per
// write call, as the hijack streamer does. fasthttp's own writer would cut
// a batch bigger than its buffer into three writes (the buffer, the rest,
// the chunk's CRLF), and a buffer big enough for the batches would be held
// by every idle listener. Both write the same chunked framing in order:
// fasthttp flushes each chunk before Write returns, so nothing of its own is
// pending when the stream writes on the connection, and it writes the last
// chunk after WriteTo returns.
type streamBody struct{ st *stream }

// Read is never called: SupportsBodyWriteTo says to call WriteTo.
func (b *streamBody) Read([]byte) (int, error) {
	return 0, errors.New("server: a stream body is written, not read")
}

// SupportsBodyWriteTo tells fasthttp to consume the body with WriteTo.
func (b *streamBody) SupportsBodyWriteTo() bool { return true }

// WriteTo runs the stream, with its first write through w. It returns what
// it wrote, and an error if the stream could not be written to the end.
func (b *streamBody) WriteTo(w io.Writer) (int64, error) {
	st := b.st
	cw := newConnWriter(st.conn, nil, true)
	cw.via = w
	st.run(cw)
	cw.release()
	var err error
	if st.writeFailed || st.conn.abort.Load() {
		err = errStreamCut
	}
	return int64(st.written.Load()), err
}

// errStreamCut makes fasthttp abandon a stream's response: no last chunk is
// written on a connection that is being reset.
var errStreamCut = errors.New("server: stream cut")

// hijacked runs the stream on the hijacked connection, in a goroutine of its
// own so that fasthttp releases the request at once.
func (st *stream) hijacked(hc net.Conn) {
	s := st.srv
	_ = hc                // the connection under it is st.conn, which fasthttp leaves to us (KeepHijackedConns)
	if !s.tasks.start() { // shut down: the stream would end at once
		st.setEnd(EndShutdown)
		st.finish()
		_ = st.conn.Close()
		return
	}
	go func() {
		defer s.tasks.done()
		defer st.conn.Close()
		w := newConnWriter(st.conn, st.head, st.chunked)
		st.head = nil
		st.run(w)
		if !st.conn.abort.Load() {
			w.finish()
		}
	}()
}

// run is the stream: greeting, then frames as they come, a heartbeat after
// each idle interval, and a retry hint when the stream ends by the service's
// choice (shutdown, maximum age). It returns on the first write error, when
// the peer hangs up, or when it is cut.
//
// The loop has one exit for everything that ends a stream from outside or
// with time: each turn first looks at the stream's context (stopped,
// hung up, cut at shutdown) and its age, before it reads, gathers and
// writes, so that a stream that is always busy, or always behind, ends on
// time too.
func (st *stream) run(w sink) {
	s := st.srv
	defer st.finish()
	defer func() {
		// fasthttp does not recover panics in stream writers, and a hijacked
		// stream runs in a goroutine of its own: one here must not take the
		// process down.
		if v := recover(); v != nil {
			st.setEnd(EndError)
			s.stats.panics.Add(1)
			s.log.Error("stream panic", "panic", v, "remote", st.who.ip, "stack", string(debug.Stack()))
		}
	}()
	st.watch()
	if st.conn != nil && s.cfg.SendBuffer > 0 {
		// What a listener that stops reading holds in the kernel until it
		// is cut: the kernel's own sizing grows to megabytes.
		_ = st.conn.SetWriteBuffer(s.cfg.SendBuffer)
	}
	s.streams.add(st)
	if st.who.subject != "" {
		s.log.Debug("listener connected", "remote", st.who.ip, "subject", st.who.subject, "listeners", s.stats.listeners.Load())
	} else {
		s.log.Debug("listener connected", "remote", st.who.ip, "listeners", s.stats.listeners.Load())
	}

	var buf [64]byte
	out := append(buf[:0], greeting...)
	if st.allowed != nil {
		// A listener with a signed token is told what it allows (the
		// viewer shows it): a comment, which EventSource ignores.
		out = appendAllowed(out, st.allowed, st.expires)
	}
	if st.filter != nil {
		out = appendFilter(out, st.filter)
	}
	out = appendRetry(out, s.retryMillis())
	if st.resume.gap {
		out = appendGap(out, st.resume.missed, st.resume.known)
	}
	_, _ = w.Write(out)
	if st.flush(w, 0, 0, 0) != nil {
		return
	}
	if st.resume.replay != nil && st.replayFromStream(w) != nil {
		return
	}
	if s.testHook != nil {
		s.testHook("stream")
	}
	for {
		now := time.Now()
		if st.over(now, w) {
			return
		}
		wrote, done := st.deliver(w, now)
		if done {
			return
		}
		if !wrote && !st.idle(w) {
			return
		}
	}
}

// deliver writes what is ready and flushes it, gathering more first when
// the stream is busy, and reports whether it wrote anything, and whether the
// stream ends (a write failed, or the listener lagged under the cut policy).
//
// A busy stream (several events waiting, or it wrote within the gathering
// time) gathers for the time the write budget gives, so that write calls
// stay within what the machine affords (see budget.go); a stream that found
// one event after a pause writes it at once.
func (st *stream) deliver(w sink, now time.Time) (wrote, done bool) {
	s := st.srv
	// The frames are read into an array from a pool, not on the stack: the
	// stream goroutine's stack stays under 2 KiB while it waits, so the
	// garbage collector shrinks it to 4 KiB (it was 8 KiB an idle listener).
	frames := batchPool.Get().(*[batchSize]*fanout.Frame) //nolint:forcetypeassert // the pool holds only these
	defer func() {
		clear(frames[:]) // keep no frame alive from the pool
		batchPool.Put(frames)
	}()
	// What fill writes may leave before the flush (a burst bigger than the
	// buffer): the deadline must be ahead of it, even after a long quiet
	// spell.
	st.armDeadline(now)
	stamp, n, cut := st.fill(w, frames[:0])
	ready := n // what the stream found before gathering: the budget's measure of lag
	if n > 0 && !cut && s.cfg.WriteBudget != 0 {
		if gather := s.budget.gatherTime(now); gather > 0 && (n > 1 || now.Sub(st.lastFlush) < gather) {
			time.Sleep(gather)
			var more int
			_, more, cut = st.fill(w, frames[:0])
			n += more
		}
	}
	if n == 0 && !cut {
		return false, false
	}
	st.delivered.Add(uint64(n))
	return true, st.flush(w, stamp, ready, n) != nil || cut
}

// over reports whether the stream must end now, before it writes anything
// more, and ends it: it was stopped (the listener hung up, or the service cut
// it at shutdown: then, if the listener still reads, it gets a retry hint on
// a frame boundary), or it reached its maximum age (a retry hint).
func (st *stream) over(now time.Time, w sink) bool {
	if st.ctx.Err() != nil {
		reason := st.causeReason()
		st.setEnd(reason)
		if reason == EndShutdown {
			st.endWithRetry(w)
		}
		return true
	}
	if !st.ageEnd.IsZero() && !now.Before(st.ageEnd) {
		st.setEnd(EndMaxAge)
		st.endWithRetry(w)
		return true
	}
	if !st.expires.IsZero() && !now.Before(st.expires) {
		// Its token expired: it must come back with a valid one.
		st.setEnd(EndExpired)
		st.endWithRetry(w)
		return true
	}
	return false
}

// idle waits for frames until the next heartbeat or the end of the stream's
// age, and writes the heartbeat when it is due. It returns false when the
// stream ends (the ring closed: every frame was written, then a retry hint);
// the other ends are the loop's (see over).
func (st *stream) idle(w sink) bool {
	s := st.srv
	now := time.Now()
	wait := s.cfg.Heartbeat - now.Sub(st.lastFlush)
	for _, end := range [...]time.Time{st.ageEnd, st.expires} {
		if !end.IsZero() {
			wait = min(wait, end.Sub(now))
		}
	}
	err := fanout.ErrTimeout
	if wait > 0 {
		// No context: the cheaper wait; what would cancel it interrupts
		// the subscriber instead (see stop).
		err = st.sub.Wait(context.Background(), wait)
	}
	switch {
	case errors.Is(err, fanout.ErrTimeout):
		if time.Since(st.lastFlush) < s.cfg.Heartbeat {
			return true // the age is due: the loop ends the stream
		}
		_, _ = io.WriteString(w, heartbeat)
		return st.flush(w, 0, 0, 0) == nil
	case errors.Is(err, fanout.ErrClosed):
		st.setEnd(EndShutdown)
		st.endWithRetry(w)
		return false
	}
	return true // frames, or interrupted (the loop sees why)
}

// endWithRetry ends the stream on a complete frame: a retry hint.
func (st *stream) endWithRetry(w sink) {
	var buf [32]byte
	_, _ = w.Write(appendRetry(buf[:0], st.srv.retryMillis()))
	_ = st.flush(w, 0, 0, 0)
}

// fill writes every ready frame to w, reading them in batches of
// cap(batch), and returns the acceptance time of the first frame it wrote
// (for latency sampling; 0 if none) and how many frames it wrote. It reports
// cut when the listener lagged and the policy is to cut it; the gap event is
// written either way.
func (st *stream) fill(w sink, batch []*fanout.Frame) (stamp int64, n int, cut bool) {
	for {
		var missed uint64
		batch, missed = st.sub.Read(batch[:0])
		if st.filter != nil {
			if n := st.sub.FilteredOut(); n > st.filteredOut {
				st.srv.stats.filteredOut.Add(n - st.filteredOut)
				st.filteredOut = n
			}
		}
		if missed > 0 {
			var buf [48]byte
			_, _ = w.Write(appendGap(buf[:0], missed, true))
			if st.lagged(missed) {
				return stamp, n, true
			}
		}
		for _, f := range batch {
			_, _ = w.Write(f.Bytes())
		}
		if n == 0 && len(batch) > 0 {
			stamp = batch[0].Stamp()
		}
		n += len(batch)
		if len(batch) < cap(batch) && missed == 0 {
			return stamp, n, false
		}
	}
}

// lagged records that the listener missed events and reports whether it is
// to be cut. It logs once per listener, not once per gap.
func (st *stream) lagged(missed uint64) bool {
	s := st.srv
	if st.missed == 0 {
		s.warnCut("listener lagged behind the buffer", "remote", st.who.ip, "missed", missed,
			"buffer", s.ring.Size(), "policy", s.cfg.LagPolicy)
	}
	st.missed += missed
	if s.cfg.LagPolicy == LagCut {
		st.setEnd(EndLagged)
		return true
	}
	return false
}

// burstAge is the age under which the oldest of the frames a stream finds
// ready shows they arrived together, not that the stream lags behind them.
const burstAge = time.Millisecond

// flush sends what w holds, first pushing the connection's write deadline
// forward (at most once per half timeout, so busy streams do not pay for it
// on every flush). A listener that stops reading makes the connection's
// write fail at the deadline. stamp, when not 0, is the acceptance time of
// the first frame written, which a sampled stream measures; frames is how
// many event frames the write carries, ready how many of them were ready
// before the stream gathered more, for the write budget.
func (st *stream) flush(w sink, stamp int64, ready, frames int) error {
	now := time.Now()
	st.armDeadline(now)
	st.lastFlush = now
	n := w.Buffered()
	if ready > 1 && stamp > 0 && now.UnixNano()-stamp < int64(burstAge) {
		// The frames had all arrived a moment before: they came in one
		// burst (the consumer of a shared stream hands over what it
		// received together), and the stream is not behind them.
		ready = 1
	}
	st.srv.budget.flushed(ready, frames)
	err := w.Flush()
	if err != nil {
		st.writeFailed = true
		st.setEnd(st.writeErrorReason(err))
		return err
	}
	st.written.Add(uint64(n))
	if st.sampled && stamp > 0 && st.srv.observeFanout != nil {
		st.srv.observeFanout(time.Since(time.Unix(0, stamp)))
	}
	return nil
}

// armDeadline makes sure the connection's write deadline is at least half
// the write timeout away, pushing it forward when it is not. It is called
// before every flush, and before a stream takes what is ready: that may
// leave in several writes before the flush (a burst bigger than its
// buffer), and a deadline set at a flush long ago, before a quiet spell,
// would make the first of them fail as if the listener had stopped reading.
// A stream being cut keeps the cut's deadline: nothing pushes it out.
func (st *stream) armDeadline(now time.Time) {
	if st.cutAt.Load() != 0 || !now.After(st.deadlineRefresh) {
		return
	}
	timeout := st.srv.cfg.WriteTimeout
	st.writeDeadline = now.Add(timeout)
	st.deadlineRefresh = now.Add(timeout / 2)
	if st.conn == nil {
		return
	}
	_ = st.conn.SetWriteDeadline(st.writeDeadline)
	if cut := st.cutAt.Load(); cut != 0 {
		// Cut meanwhile: its deadline may have been set before ours.
		_ = st.conn.SetWriteDeadline(time.Unix(0, cut))
	}
}

// writeErrorReason classifies a failed write: the listener went away, or it
// stopped reading (the write deadline passed), or the stream was cut. The
// error that counts is the connection's own: with fasthttp's stream writer,
// the stream only sees that fasthttp's pipe closed.
func (st *stream) writeErrorReason(err error) EndReason {
	if st.ctx.Err() != nil && !errors.Is(context.Cause(st.ctx), errConnGone) {
		return st.causeReason()
	}
	if st.conn != nil {
		if cerr := st.conn.writeError(); cerr != nil {
			err = cerr
		}
	}
	return classifyWriteError(err)
}

// classifyWriteError tells a listener that stopped reading (a write deadline
// passed) from one that went away (reset, closed).
func classifyWriteError(err error) EndReason {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return EndSlow
	case errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNRESET), errors.Is(err, net.ErrClosed):
		return EndGone
	}
	return EndError
}

// causeReason says why the stream's context was canceled.
func (st *stream) causeReason() EndReason {
	switch cause := context.Cause(st.ctx); {
	case errors.Is(cause, errHungUp):
		return EndGone
	case errors.Is(cause, errCutAtStop):
		return EndShutdown
	case errors.Is(cause, errConnGone):
		// fasthttp closed the connection, after a write failed or because
		// the listener closed it.
		if err := st.conn.writeError(); err != nil {
			return classifyWriteError(err)
		}
		return EndGone
	}
	return EndError
}

// setEnd records why the stream ends, once: the first reason wins.
func (st *stream) setEnd(r EndReason) {
	if !st.ended {
		st.end, st.ended = r, true
	}
}

// watch asks to be told when the listener hangs up or its connection is
// closed under the stream.
func (st *stream) watch() {
	s := st.srv
	if st.conn == nil {
		return
	}
	st.conn.setCloseHook(func() { st.stop(errConnGone) })
	if s.watcher != nil {
		if stop, err := s.watcher.Watch(st.conn, func() { st.stop(errHungUp) }); err == nil {
			st.unwatch = stop
		}
	}
}

// stop makes the stream end, for cause: its context is canceled and its wait
// for frames interrupted. Safe from any goroutine.
func (st *stream) stop(cause error) {
	st.cancel(cause)
	st.sub.Interrupt()
}

// cutGrace is how long a stream cut at shutdown may still take to write
// what it is writing: a listener that reads gets it, and a retry hint, on a
// frame boundary; one that does not read fails its write then.
const cutGrace = 500 * time.Millisecond

// cutNow makes a stream stop at shutdown: its context is canceled, and its
// write deadline brought to at most cutGrace from now, for good.
func (st *stream) cutNow() {
	deadline := time.Now().Add(cutGrace)
	st.cutAt.Store(deadline.UnixNano())
	if st.conn != nil {
		_ = st.conn.SetWriteDeadline(deadline)
	}
	st.stop(errCutAtStop)
}

// finish releases the listener: its subscription, its hang-up watch, its
// slot in the listener counts. A stream the service ended is closed so that
// the kernel keeps nothing for a listener that does not read: one whose
// write failed (it stopped reading, or was still stuck at the cut) is reset,
// which drops what is queued for it at once; another one (ended at its age,
// at shutdown, or for lagging) gets the end of its stream and then, if it
// does not close its side within drainTimeout, a reset too.
func (st *stream) finish() {
	s := st.srv
	st.setEnd(EndGone)
	st.cancel(nil)
	if st.conn != nil {
		st.conn.setCloseHook(nil)
		switch {
		case st.writeFailed || st.end == EndSlow:
			st.conn.abortOnClose()
		case st.end != EndGone && st.end != EndError:
			st.conn.drain.Store(true)
		}
	}
	if st.unwatch != nil {
		st.unwatch()
	}
	_ = st.sub.Close()
	s.streams.remove(st)
	s.stats.ended[st.end].Add(1)
	s.release(st.who)
	// What it missed includes what it had lost without reading that far
	// (counted by Close).
	attrs := []any{"remote", st.who.ip, "reason", st.end.String(), "duration", time.Since(st.start).Round(time.Millisecond),
		"missed", st.sub.Missed(), "listeners", s.stats.listeners.Load()}
	if st.end.cut() {
		s.warnCut("listener cut", attrs...)
	} else {
		s.log.Debug("listener disconnected", attrs...)
	}
}
