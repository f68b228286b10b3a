package server

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/goccy/go-json/jsontext"
	"github.com/valyala/fasthttp"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/fanout"
)

// DefaultTopic is the topic of events posted without a topic parameter.
const DefaultTopic = "default"

// handlePublish is POST /api/events: check the producer, read the body
// (bounded by what the producer sends, not by what it announces), validate and
// compact it, add the producer's address, build the event's frame once and
// publish it. It answers 200 with an empty body once the event is in the
// fan-out, or, for an NDJSON batch, {"accepted":N} once every event is.
//
// Any Content-Type is accepted: navigator.sendBeacon sends text/plain.
func (s *Server) handlePublish(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	if s.observePost != nil {
		defer func() { s.observePost(time.Since(start)) }()
	}
	if s.testHook != nil {
		s.testHook("publish")
	}
	if reason, status, msg, ok := s.checkPublish(&ctx.Request.Header); !ok {
		s.refuse(ctx, reason, status, msg)
		return
	}
	args := ctx.QueryArgs()
	topic := args.Peek("topic")
	switch {
	case len(topic) == 0 && !args.Has("topic"):
		topic = []byte(DefaultTopic)
	case len(args.PeekMulti("topic")) > 1:
		s.reject(ctx, RejectInvalid, fasthttp.StatusBadRequest, `one "topic" parameter per request`)
		return
	case !validTopic(topic):
		s.reject(ctx, RejectInvalid, fasthttp.StatusBadRequest, errInvalidTopic.Error())
		return
	}
	event := args.Peek("event")
	if args.Has("event") && !validName(event) {
		s.reject(ctx, RejectInvalid, fasthttp.StatusBadRequest, errInvalidEvent.Error())
		return
	}
	if string(event) == "gap" {
		// The service's own event: a producer must not be able to forge it.
		s.reject(ctx, RejectInvalid, fasthttp.StatusBadRequest, `event name "gap" is reserved for the service`)
		return
	}
	batch := isNDJSON(ctx.Request.Header.ContentType())
	limit := s.cfg.MaxBody
	if batch {
		limit = s.cfg.MaxBatch
	}
	body, release, err := s.readBody(ctx, limit)
	defer release()
	if err != nil {
		s.refuseBody(ctx, err, limit)
		return
	}
	in := input{topic: string(topic), event: event, stamp: start.UnixNano()}
	if batch {
		s.publishBatch(ctx, in, body)
		return
	}
	buf := newFrameBuf(s.events.payloadSize(len(body)))
	if in.payload, err = s.events.appendPayload(buf, body, s.clientIP(ctx)); err != nil {
		s.reject(ctx, RejectInvalid, fasthttp.StatusBadRequest, err.Error())
		return
	}
	if s.bridge != nil {
		if err := s.publishShared(ctx, in); err != nil {
			s.refuseShared(ctx, err)
			return
		}
	} else if err := s.publish(in); err != nil {
		s.refusePublish(ctx, err)
		return
	}
	s.stats.accepted.Add(1)
}

// checkPublish decides, from the request head alone, whether a POST may go
// on: it is called before any of the body is read, also for a request that
// expects "100 Continue".
func (s *Server) checkPublish(h *fasthttp.RequestHeader) (RejectReason, int, string, bool) {
	if s.state.Load() >= stateDraining {
		return RejectShuttingDown, fasthttp.StatusServiceUnavailable, "shutting down", false
	}
	if !s.publishAllowed(h) {
		return RejectUnauthorized, fasthttp.StatusUnauthorized, "missing or invalid publish token", false
	}
	limit := s.cfg.MaxBody
	if isNDJSON(h.ContentType()) {
		limit = s.cfg.MaxBatch
	}
	if n := h.ContentLength(); n > limit {
		return RejectTooLarge, fasthttp.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", limit), false
	}
	return 0, 0, "", true
}

// refuse answers a POST refused before its body was read. The connection is
// closed after the answer, draining what the client may still send, so that
// it reads the answer rather than a reset.
func (s *Server) refuse(ctx *fasthttp.RequestCtx, reason RejectReason, status int, msg string) {
	if reason == RejectUnauthorized {
		ctx.Response.Header.Set(fasthttp.HeaderWWWAuthenticate, `Bearer realm="pillarbox-event-dispatcher"`)
	}
	if reason == RejectShuttingDown {
		ctx.Response.Header.Set(fasthttp.HeaderRetryAfter, "1")
	}
	drainOnClose(ctx.Conn())
	ctx.SetConnectionClose()
	s.reject(ctx, reason, status, msg)
}

func (s *Server) reject(ctx *fasthttp.RequestCtx, reason RejectReason, status int, msg string) {
	s.stats.rejected[reason].Add(1)
	writeError(ctx, status, msg)
}

// input is an accepted POST on its way to the fan-out.
type input struct {
	topic   string
	event   []byte
	payload []byte // in a frame buffer (newFrameBuf)
	stamp   int64  // when the POST arrived, Unix nanoseconds
}

// publish puts one event into the fan-out: numbered by the ring, its frame
// finished in place, committed.
func (s *Server) publish(in input) error {
	res, err := s.ring.Reserve(in.topic, 1)
	if err != nil {
		return err
	}
	sp := s.epoch.Load().space
	s.ring.Commit(res, fanout.Message{Data: finishFrame(in.payload, sp, res.Seq(), in.event), Stamp: in.stamp})
	return nil
}

// refusePublish answers a POST whose event could not be published.
func (s *Server) refusePublish(ctx *fasthttp.RequestCtx, err error) {
	switch {
	case errors.Is(err, fanout.ErrTooManyTopics):
		ctx.Response.Header.Set(fasthttp.HeaderRetryAfter, "60")
		s.reject(ctx, RejectTooManyTopics, fasthttp.StatusServiceUnavailable,
			"too many topics at once; retry later (idle topics are released)")
	case errors.Is(err, fanout.ErrClosed):
		ctx.SetConnectionClose()
		s.reject(ctx, RejectShuttingDown, fasthttp.StatusServiceUnavailable, "shutting down")
	default:
		ctx.Response.Header.Set(fasthttp.HeaderRetryAfter, "1")
		s.reject(ctx, RejectUnavailable, fasthttp.StatusServiceUnavailable, err.Error())
	}
}

// publishBatch publishes an NDJSON body: one event per non-blank line, all or
// nothing (every line is validated before any is published), in line order
// and consecutively in the fan-out.
func (s *Server) publishBatch(ctx *fasthttp.RequestCtx, in input, body []byte) {
	ip := s.clientIP(ctx)
	var payloads [][]byte
	for lineNo := 1; len(body) > 0; lineNo++ {
		var line []byte
		line, body, _ = bytes.Cut(body, []byte{'\n'})
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(bytes.TrimLeft(line, " \t\r")) == 0 {
			continue
		}
		if len(line) > s.cfg.MaxBody {
			s.reject(ctx, RejectTooLarge, fasthttp.StatusRequestEntityTooLarge,
				fmt.Sprintf("line %d: larger than %d bytes; nothing was published", lineNo, s.cfg.MaxBody))
			return
		}
		p, err := s.events.appendPayload(newFrameBuf(s.events.payloadSize(len(line))), line, ip)
		if err != nil {
			s.reject(ctx, RejectInvalid, fasthttp.StatusBadRequest, fmt.Sprintf("line %d: %v; nothing was published", lineNo, err))
			return
		}
		payloads = append(payloads, p)
	}
	if len(payloads) == 0 {
		s.reject(ctx, RejectInvalid, fasthttp.StatusBadRequest, "empty batch")
		return
	}
	if s.bridge != nil {
		acked, err := s.publishSharedBatch(ctx, in, payloads)
		s.stats.accepted.Add(uint64(acked))
		if err != nil {
			// The first acked events are stored (and will be broadcast);
			// the others may be, or not. A retry with the same
			// Idempotency-Key stores each at most once.
			s.refuseShared(ctx, err)
			ctx.SetBody(fmt.Appendf(nil, `{"error":%s,"accepted":%d}`, appendJSONString(nil, err.Error()), acked))
			return
		}
		ctx.SetContentType("application/json")
		ctx.SetBody(fmt.Appendf(nil, `{"accepted":%d}`, acked))
		return
	}
	res, err := s.ring.Reserve(in.topic, len(payloads))
	if err != nil {
		s.refusePublish(ctx, err)
		return
	}
	sp := s.epoch.Load().space
	msgs := make([]fanout.Message, len(payloads))
	for i, p := range payloads {
		msgs[i] = fanout.Message{Data: finishFrame(p, sp, res.Seq()+uint64(i), in.event), Stamp: in.stamp}
	}
	s.ring.Commit(res, msgs...)
	s.stats.accepted.Add(uint64(len(payloads)))
	ctx.SetContentType("application/json")
	ctx.SetBody(fmt.Appendf(nil, `{"accepted":%d}`, len(payloads)))
}

// isNDJSON reports whether a Content-Type is newline-delimited JSON.
func isNDJSON(ct []byte) bool {
	mt, _, _ := bytes.Cut(ct, []byte{';'})
	mt = bytes.TrimSpace(mt)
	return asciiEqualFold(mt, "application/x-ndjson") && len(mt) == len("application/x-ndjson")
}

// writeError sends a JSON error body {"error":"<msg>"}.
func writeError(ctx *fasthttp.RequestCtx, status int, msg string) {
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	body := append(make([]byte, 0, len(msg)+16), `{"error":`...)
	body = appendJSONString(body, msg)
	ctx.SetBody(append(body, '}'))
}

// appendJSONString appends s as a JSON string.
func appendJSONString(dst []byte, s string) []byte {
	out, _ := jsontext.AppendQuote(dst, s) // invalid UTF-8 becomes U+FFFD
	return out
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) < len(s) {
		return false
	}
	for i := range len(s) {
		c, d := b[i], s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if 'A' <= d && d <= 'Z' {
			d += 'a' - 'A'
		}
		if c != d {
			return false
		}
	}
	return true
}
