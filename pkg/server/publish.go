package server

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/goccy/go-json/jsontext"
	"github.com/valyala/fasthttp"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/fanout"
	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/filter"
	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/topic"
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
	in, r := s.checkPublish(ctx)
	if r != nil {
		s.refuse(ctx, r)
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
	in.stamp = start.UnixNano()
	if batch {
		s.publishBatch(ctx, in, body)
		return
	}
	seg := newFrameBuf(in.room, s.events.payloadSize(len(body)))
	if seg, err = s.events.appendPayload(seg, body, s.clientIP(ctx)); err != nil {
		s.reject(ctx, RejectInvalid, fasthttp.StatusBadRequest, err.Error())
		return
	}
	if in.fromEvent {
		in.head.topic = s.eventTopic(seg[in.room:])
		if r := canPublish(in.grant, in.head.topic); r != nil {
			s.setRefusalHeaders(ctx, r)
			s.reject(ctx, r.reason, r.status, r.msg)
			return
		}
	}
	if s.bridge != nil {
		// Counted as accepted there, once stored (a duplicate is not).
		if err := s.publishShared(ctx, in, seg, body); err != nil {
			s.refuseShared(ctx, err)
		}
		return
	}
	if err := s.publish(in, seg); err != nil {
		s.refusePublish(ctx, err)
		return
	}
	s.stats.accepted.Add(1)
}

// publishParams returns a POST's topic ("" if none) and event name (nil if
// none), validated: each at most once.
func publishParams(args *fasthttp.Args) (name string, event []byte, err error) {
	switch values := args.PeekMulti("topic"); {
	case len(values) > 1:
		return "", nil, errors.New(`one "topic" parameter per request`)
	case len(values) == 1 && !topic.Valid(string(values[0])):
		return "", nil, errInvalidTopic
	case len(values) == 1:
		name = string(values[0])
	}
	switch values := args.PeekMulti("event"); {
	case len(values) > 1:
		return "", nil, errors.New(`one "event" parameter per request`)
	case len(values) == 1 && !validName(values[0]):
		return "", nil, errInvalidEvent
	case len(values) == 1 && string(values[0]) == "gap":
		// The service's own event: a producer must not be able to forge it.
		return "", nil, errors.New(`event name "gap" is reserved for the service`)
	case len(values) == 1:
		event = values[0]
	}
	return name, event, nil
}

// checkPublish decides, from the request head alone, whether a POST may go
// on, and returns what it is to publish: its topic (or, with
// Config.TopicField and no topic parameter, that its events name theirs) and
// event name. It is called before any of the body is read, also for a
// request that expects "100 Continue".
func (s *Server) checkPublish(ctx *fasthttp.RequestCtx) (input, *refusal) {
	h := &ctx.Request.Header
	if s.state.Load() >= stateDraining {
		return input{}, &refusal{status: fasthttp.StatusServiceUnavailable, reason: RejectShuttingDown, msg: "shutting down"}
	}
	topic, event, err := publishParams(ctx.QueryArgs())
	if err != nil {
		return input{}, &refusal{status: fasthttp.StatusBadRequest, reason: RejectInvalid, msg: err.Error()}
	}
	in := input{head: frameHead{event: event, topic: topic}}
	switch {
	case topic != "":
	case s.cfg.TopicField != "":
		in.fromEvent = true // its events name their topics: checked once read
	default:
		in.head.topic = DefaultTopic
	}
	var r *refusal
	if in.grant, r = s.publishAccess(h, in.head.topic); r != nil {
		return input{}, r
	}
	limit := s.cfg.MaxBody
	if isNDJSON(h.ContentType()) {
		limit = s.cfg.MaxBatch
	}
	if n := h.ContentLength(); n > limit {
		return input{}, &refusal{status: fasthttp.StatusRequestEntityTooLarge, reason: RejectTooLarge,
			msg: fmt.Sprintf("body larger than %d bytes", limit)}
	}
	in.room = in.head.room()
	if in.fromEvent {
		in.room += len(topicPrefix) + maxNameLen + 1 // room for any topic line
	}
	return in, nil
}

// eventTopic returns the topic an event names in its Config.TopicField
// field: that field's value if it is a valid topic name, DefaultTopic
// otherwise (no such field, not a string, not a valid name).
func (s *Server) eventTopic(payload []byte) string {
	if name, ok := filter.TopLevelString(payload, s.cfg.TopicField); ok && topic.Valid(name) {
		// A copy: the name shares the payload's memory (a whole batch's),
		// which a topic created with it would keep alive.
		return strings.Clone(name)
	}
	return DefaultTopic
}

// refuse answers a POST refused before its body was read. The connection is
// closed after the answer, draining what the client may still send, so that
// it reads the answer rather than a reset.
func (s *Server) refuse(ctx *fasthttp.RequestCtx, r *refusal) {
	s.setRefusalHeaders(ctx, r)
	drainOnClose(ctx.Conn())
	ctx.SetConnectionClose()
	s.reject(ctx, r.reason, r.status, r.msg)
}

// setRefusalHeaders sets what a refusal's answer says besides its body.
func (s *Server) setRefusalHeaders(ctx *fasthttp.RequestCtx, r *refusal) {
	if r.authenticate != "" {
		ctx.Response.Header.Set(fasthttp.HeaderWWWAuthenticate, r.authenticate)
	}
	if r.reason == RejectShuttingDown {
		ctx.Response.Header.Set(fasthttp.HeaderRetryAfter, "1")
	}
}

func (s *Server) reject(ctx *fasthttp.RequestCtx, reason RejectReason, status int, msg string) {
	s.stats.rejected[reason].Add(1)
	writeError(ctx, status, msg)
}

// input is an accepted POST on its way to the fan-out.
type input struct {
	head  frameHead
	grant Grant // the producer's signed token's grant; nil: every topic
	room  int   // the room before each payload in its segment: head.room(), or more
	stamp int64 // when the POST arrived, Unix nanoseconds
	// fromEvent: its events name their topics (Config.TopicField); once
	// read, head.topic is that of the event being published.
	fromEvent bool
}

// publish puts one event into the fan-out: numbered by the ring, its frame
// finished in place in seg (room bytes, then the payload), committed. The
// payload is what listeners' filters are evaluated against.
func (s *Server) publish(in input, seg []byte) error {
	res, err := s.ring.Reserve(in.head.topic, 1)
	if err != nil {
		return err
	}
	sp := s.epoch.Load().space
	payload := seg[in.room:]
	s.ring.Commit(res, fanout.Message{Data: finishFrame(seg, in.room, sp, res.Seq(), in.head), Stamp: in.stamp, Event: payload})
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
// and consecutively in the fan-out (consecutively per topic for events that
// name their topics: see publishRuns).
func (s *Server) publishBatch(ctx *fasthttp.RequestCtx, in input, body []byte) {
	segs, status, msg := s.parseBatch(body, in.room, s.clientIP(ctx))
	if status != 0 {
		reason := RejectInvalid
		if status == fasthttp.StatusRequestEntityTooLarge {
			reason = RejectTooLarge
		}
		s.reject(ctx, reason, status, msg)
		return
	}
	var topics []string // per event, when its events name their topics
	if in.fromEvent {
		topics = make([]string, len(segs))
		for i, seg := range segs {
			topics[i] = s.eventTopic(seg[in.room:])
			if r := canPublish(in.grant, topics[i]); r != nil {
				s.setRefusalHeaders(ctx, r)
				s.reject(ctx, r.reason, r.status, fmt.Sprintf("event %d: %s; nothing was published", i+1, r.msg))
				return
			}
		}
	}
	if s.bridge != nil {
		acked, err := s.publishSharedBatch(ctx, in, segs, body, topics)
		if err != nil {
			s.refuseSharedBatch(ctx, err, acked)
			return
		}
		ctx.SetContentType("application/json")
		ctx.SetBody(fmt.Appendf(nil, `{"accepted":%d}`, acked))
		return
	}
	n, err := s.publishRuns(in, segs, topics)
	s.stats.accepted.Add(uint64(n))
	if err != nil {
		s.refusePublish(ctx, err)
		if n > 0 {
			// Events of the first topics are published: say how many.
			ctx.SetBody(fmt.Appendf(nil, `{"error":%s,"accepted":%d}`, appendJSONString(nil, err.Error()), n))
		}
		return
	}
	ctx.SetContentType("application/json")
	ctx.SetBody(fmt.Appendf(nil, `{"accepted":%d}`, len(segs)))
}

// publishRuns puts a batch's events into the fan-out, on in's topic, or on
// topics[i] for event i: each run of consecutive events on one topic
// consecutively (one reservation), the runs in order. It returns how many
// events, from the first, it published.
func (s *Server) publishRuns(in input, segs [][]byte, topics []string) (int, error) {
	for first := 0; first < len(segs); {
		end := len(segs)
		if topics != nil {
			in.head.topic = topics[first]
			end = first + 1
			for end < len(segs) && topics[end] == topics[first] {
				end++
			}
		}
		res, err := s.ring.Reserve(in.head.topic, end-first)
		if err != nil {
			return first, err
		}
		sp := s.epoch.Load().space
		msgs := make([]fanout.Message, end-first)
		for i, seg := range segs[first:end] {
			msgs[i] = fanout.Message{Data: finishFrame(seg, in.room, sp, res.Seq()+uint64(i), in.head),
				Stamp: in.stamp, Event: seg[in.room:]}
		}
		s.ring.Commit(res, msgs...)
		first = end
	}
	return len(segs), nil
}

// parseBatch validates and compacts every non-blank line of an NDJSON body
// into one buffer sized from the body, each as a segment of room free bytes
// and its payload, with capacity for the frame end after it. The working
// memory of a batch is so a small multiple of its bytes, whatever the number
// of events in it: one allocation, however many lines. On a refusal it
// returns the status and the message.
func (s *Server) parseBatch(body []byte, room int, ip netip.Addr) (segs [][]byte, status int, msg string) {
	// First the lines and their sizes, so that a batch over the limits is
	// refused before any work, and the buffer is allocated once.
	var lines, size int
	for lineNo, rest := 1, body; len(rest) > 0; lineNo++ {
		var line []byte
		line, rest = nextLine(rest)
		if line == nil {
			continue
		}
		if len(line) > s.cfg.MaxBody {
			return nil, fasthttp.StatusRequestEntityTooLarge,
				fmt.Sprintf("line %d: larger than %d bytes; nothing was published", lineNo, s.cfg.MaxBody)
		}
		if lines++; lines > s.maxBatchEvents {
			return nil, fasthttp.StatusRequestEntityTooLarge,
				fmt.Sprintf("batch of more than %d events (max-batch-events); nothing was published", s.maxBatchEvents)
		}
		size += room + s.events.payloadSize(len(line)) + len(frameEnd)
	}
	if lines == 0 {
		return nil, fasthttp.StatusBadRequest, "empty batch"
	}
	buf := make([]byte, 0, size)
	segs = make([][]byte, 0, lines)
	for lineNo, rest := 1, body; len(rest) > 0; lineNo++ {
		var line []byte
		line, rest = nextLine(rest)
		if line == nil {
			continue
		}
		start := len(buf)
		seg, err := s.events.appendPayload(buf[start:start+room], line, ip)
		if err != nil {
			return nil, fasthttp.StatusBadRequest, fmt.Sprintf("line %d: %v; nothing was published", lineNo, err)
		}
		if &seg[0] != &buf[:start+1][start] {
			panic("server: an event's payload outgrew the size computed for it")
		}
		end := start + len(seg)
		segs = append(segs, buf[start:end:end+len(frameEnd)])
		buf = buf[:end+len(frameEnd)]
	}
	return segs, 0, ""
}

// nextLine returns the first line of an NDJSON body (without its CR LF or
// LF), nil if it is blank, and the rest.
func nextLine(body []byte) (line, rest []byte) {
	line, rest, _ = bytes.Cut(body, []byte{'\n'})
	line = bytes.TrimSuffix(line, []byte{'\r'})
	if len(bytes.TrimLeft(line, " \t\r")) == 0 {
		return nil, rest
	}
	return line, rest
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
