package natsbridge

// Publishing health: whether the bridge can publish now, which is what an
// instance's readiness means. A TCP connection to a NATS server is not
// enough: the stream must have a leader that acknowledges, and when the
// leader's server dies its followers take seconds to elect another one.
//
//   - The bridge becomes publishable when its live consumer joins the stream
//     (the session just read the stream's info, with a leader) and when a
//     probe is answered by the stream's leader.
//   - It stops being publishable when the connection drops, when a publish
//     fails for want of an answer (no responders: the stream has no leader
//     where the message went; no acknowledgement in time; the connection lost
//     while waiting), and when a probe is not answered by a leader.
//   - While it is not, Publish fails at once with ErrUnavailable: a POST waits
//     on nothing that is gone. Publishes already waiting for their
//     acknowledgement when it stops stop waiting too (their message may or
//     may not be stored: a retry with the same id stores it once).
//     Meanwhile the prober probes every probeInterval, several probes in
//     flight at once (each waits at most the API timeout), so that the first
//     answer of a leader makes the bridge publishable again within about
//     probeInterval of the stream's recovery.
//   - While it is, the prober probes every healthInterval, so readiness tells
//     the truth when no event flows.
//
// A probe is a publish that the leader refuses without storing it: to a
// subject under the prefix that is no topic, expecting the stream's last
// sequence to be the largest possible. The leader answers "wrong last
// sequence": it is there and it acknowledges. No answer, no responders (no
// leader has the stream's subjects where the probe went) or any other
// answer means it cannot take publishes now. The probe goes the way
// publishes go, through the same server, so it sees what they would see.
//
// After an outage of the stream itself (not of the connection, which resets
// the consumer anyway), the live consumer is replaced when the stream
// recovers: it may have lived on the server that is gone.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

const (
	probeInterval  = 100 * time.Millisecond
	healthInterval = 500 * time.Millisecond
	maxProbes      = 4
	// probeExpect is the last sequence a probe expects the stream to have:
	// none ever has it, so the leader refuses the probe (codeWrongLastSeq).
	probeExpect = "18446744073709551615"
	// probeToken ends the subject of probes: not a topic, so that a probe
	// stored all the same would be skipped by every consumer.
	probeToken = "$probe"
)

// apiTimeout is how long a control request (stream info, consumer creation,
// probe) waits for its answer.
func (b *Bridge) apiTimeout() time.Duration { return min(b.cfg.PublishTimeout, maxAPITimeout) }

// prober runs until Close: it probes the stream every probeInterval while the
// bridge cannot publish, every healthInterval while it can, and at once when
// woken (a publish failed, the connection changed).
func (b *Bridge) prober() {
	defer b.probes.Done()
	t := time.NewTimer(probeInterval)
	defer t.Stop()
	inflight := make(chan struct{}, maxProbes)
	for {
		select {
		case <-t.C:
		case <-b.probeWake:
		case <-b.probeCtx.Done():
			return
		}
		interval := healthInterval
		if !b.publishable.Load() {
			interval = probeInterval
		}
		if b.connected() {
			select {
			case inflight <- struct{}{}:
				b.probes.Add(1)
				go func() {
					defer b.probes.Done()
					defer func() { <-inflight }()
					b.probe()
				}()
			default: // as many probes in flight as allowed: the next tick
			}
		}
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(interval)
	}
}

// sweeper fails the publishes whose acknowledgement is overdue, every
// sweepInterval, until Close.
func (b *Bridge) sweeper() {
	defer b.probes.Done()
	t := time.NewTicker(sweepInterval)
	defer t.Stop()
	for {
		select {
		case now := <-t.C:
			b.acks.sweep(now.UnixNano())
		case <-b.probeCtx.Done():
			return
		}
	}
}

// connected tells whether the connection is up, as the connection handlers
// last said; it does not wait for the client.
func (b *Bridge) connected() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.server != ""
}

// probe sends one probe, and records what the answer says. A failure counts
// only if no probe sent after this one succeeded meanwhile: answers may come
// back out of order.
func (b *Bridge) probe() {
	sent := time.Now().UnixNano()
	ctx, cancel := context.WithTimeout(b.probeCtx, b.apiTimeout())
	defer cancel()
	msg := nats.NewMsg(b.cfg.Subject + "." + probeToken)
	msg.Header.Set(jetstream.ExpectedLastSeqHeader, probeExpect)
	reply, err := b.nc.RequestMsgWithContext(ctx, msg)
	if b.closing.Load() || b.probeCtx.Err() != nil {
		return
	}
	if err == nil {
		err = probeAnswer(reply.Data)
	}
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		b.cannotPublish(sent, "stream has no leader (no responders)", true)
	case errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrDisconnected):
		b.cannotPublish(sent, "disconnected", false)
	case err != nil:
		b.cannotPublish(sent, "stream does not acknowledge: "+err.Error(), true)
	default:
		b.canPublishNow(sent)
	}
}

// probeAnswer returns nil when a probe's answer comes from the stream's
// leader: the refusal it expects (or an acknowledgement), and the error
// otherwise.
func probeAnswer(data []byte) error {
	var a struct {
		Error  *jetstream.APIError `json:"error"`
		Stream string              `json:"stream"`
	}
	switch err := json.Unmarshal(data, &a); {
	case err != nil:
		return fmt.Errorf("probe answer: %w", err)
	case a.Error != nil && a.Error.ErrorCode == codeWrongLastSeq, a.Error == nil && a.Stream != "":
		return nil
	case a.Error != nil:
		return a.Error
	}
	return errors.New("empty probe answer")
}

// canPublishNow records that the stream answered a request sent at sent
// with a leader: the bridge publishes again, unless it is disconnected,
// closed, or the stream conflicts with the configuration. What counts is
// when the request was sent, not when its answer was read: on a busy machine
// an answer from before a fault may be read after publishes sent since have
// failed, and those failures are news.
func (b *Bridge) canPublishNow(sent int64) {
	storeMax(&b.lastOK, sent)
	if sent <= b.lastFail.Load() {
		return // a request sent since failed
	}
	if b.publishable.Load() {
		return
	}
	b.mu.Lock()
	if b.server == "" || b.state == StateClosed || b.state == StateConflict || b.closing.Load() {
		b.mu.Unlock()
		return
	}
	b.pubReason = ""
	b.publishable.Store(true)
	streamOutage := b.streamOutage
	b.streamOutage = false
	b.mu.Unlock()
	b.log.Info("nats stream publishable", "stream", b.cfg.Stream)
	if streamOutage {
		b.askReset()
	}
}

// cannotPublish records why the bridge cannot publish now. sent, when not
// zero, is when the request that failed was sent: a failure older than the
// last success is stale and ignored. stream tells an outage of the stream
// (no leader, no answer) from one of the connection.
func (b *Bridge) cannotPublish(sent int64, reason string, stream bool) {
	if sent == 0 {
		sent = time.Now().UnixNano()
	} else if sent < b.lastOK.Load() {
		return
	}
	storeMax(&b.lastFail, sent)
	b.mu.Lock()
	was := b.publishable.Swap(false)
	if was || b.pubReason == "" {
		b.pubReason = reason
	}
	if was {
		// Publishes waiting for an acknowledgement stop waiting.
		close(*b.down.Swap(newDown()))
	}
	// The live consumer may have lived on the server that is gone: replace
	// it when the stream is back (a session under way joins anyway).
	b.streamOutage = b.streamOutage || stream && b.ready.Load()
	b.mu.Unlock()
	if was {
		b.stats.unpublishable.Add(1)
		b.log.Warn("nats stream not publishable", "stream", b.cfg.Stream, "reason", reason)
	}
	select {
	case b.probeWake <- struct{}{}:
	default:
	}
}

// publishFailed records what a failed publish says of the stream: when the
// stream cannot take publishes now (as opposed to the message, or the caller,
// being the problem), the bridge stops publishing until a probe finds it back.
// sent is when the publish was sent.
func (b *Bridge) publishFailed(sent int64, err error) {
	var apiErr *jetstream.APIError
	switch {
	case b.closing.Load(), errors.Is(err, context.Canceled):
		// Closing, or the caller gave up: nothing learned.
	case errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, nats.ErrNoResponders):
		b.cannotPublish(sent, "stream has no leader (no responders)", true)
	case errors.Is(err, errAckTimeout), errors.Is(err, jetstream.ErrAsyncPublishTimeout), errTimeoutLike(err):
		b.cannotPublish(sent, "no acknowledgement in time", true)
	case errors.Is(err, nats.ErrDisconnected), errors.Is(err, nats.ErrConnectionClosed),
		errors.Is(err, nats.ErrConnectionReconnecting):
		b.cannotPublish(sent, "disconnected", false)
	case errors.As(err, &apiErr) && apiErr.Code >= 500:
		b.cannotPublish(sent, fmt.Sprintf("stream unavailable: %v", apiErr), true)
	}
}

// storeMax makes v at least x.
func storeMax(v *atomic.Int64, x int64) {
	for {
		old := v.Load()
		if x <= old || v.CompareAndSwap(old, x) {
			return
		}
	}
}

// newDown returns a channel for Bridge.down.
func newDown() *chan struct{} {
	c := make(chan struct{})
	return &c
}
