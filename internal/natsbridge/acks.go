package natsbridge

// Asynchronous publishes and their acknowledgements, on the core connection.
//
// nats.go's jetstream.PublishMsgAsync does this job too; it is not used for
// single events because of what it costs per message on the hot path of a
// POST (measured in bench/, see the README's "Scaling out"): a timer per
// message for its timeout, two channels, an acknowledgement decoded with
// encoding/json, and a retry machinery the bridge does not want (a publish
// that finds no responder must fail at once: health.go). Here:
//
//   - every publish gets the reply subject <inbox>.<n> (n from a counter) and
//     a pending entry in one of acksShards maps, whose channel (from a pool)
//     receives the outcome;
//   - one subscription to <inbox>.* receives the acknowledgements, parses
//     them by hand (a JetStream PubAck is {"stream":...,"seq":N} with
//     "duplicate":true for a duplicate, or {"error":{...}}), and hands each
//     to its waiter;
//   - one sweeper goroutine fails, every sweepInterval, the entries older
//     than the publish timeout: no timer per message;
//   - a disconnect fails every entry at once (ErrDisconnected): their
//     acknowledgements would go to a connection that no longer exists.

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

const (
	acksShards    = 16
	sweepInterval = 50 * time.Millisecond
)

// errAckTimeout is the outcome of a publish whose acknowledgement did not come
// within the publish timeout.
var errAckTimeout = errors.New("natsbridge: no acknowledgement within the publish timeout")

// ackResult is the outcome of one publish.
type ackResult struct {
	err error
	ack jetstream.PubAck
}

// waiter is one publish waiting for its acknowledgement.
type waiter struct {
	ch      chan ackResult // cap 1; from waiterPool
	expires int64          // Unix ns
}

var waiterPool = sync.Pool{New: func() any { return &waiter{ch: make(chan ackResult, 1)} }}

// acks matches acknowledgements to the publishes waiting for them. Safe for
// concurrent use.
type acks struct {
	prefix  string // "<inbox>."
	next    atomic.Uint64
	pending atomic.Int64
	shards  [acksShards]struct {
		mu sync.Mutex
		m  map[uint64]*waiter
		_  [40]byte // the mutex and map pointer, to a cache line each shard
	}
}

func newAcks() *acks {
	a := &acks{prefix: nats.InboxPrefix + nuid.Next() + "."}
	for i := range a.shards {
		a.shards[i].m = make(map[uint64]*waiter)
	}
	return a
}

// register returns a waiter and the reply subject its acknowledgement comes
// to, expiring at expires.
func (a *acks) register(expires int64) (*waiter, string) {
	id := a.next.Add(1)
	w := waiterPool.Get().(*waiter)
	w.expires = expires
	sh := &a.shards[id%acksShards]
	sh.mu.Lock()
	sh.m[id] = w
	sh.mu.Unlock()
	a.pending.Add(1)
	var buf [64]byte
	reply := append(append(buf[:0], a.prefix...), strconv.FormatUint(id, 36)...)
	return w, string(reply)
}

// take removes the waiter of id, nil if there is none (already answered,
// expired or failed).
func (a *acks) take(id uint64) *waiter {
	sh := &a.shards[id%acksShards]
	sh.mu.Lock()
	w := sh.m[id]
	if w != nil {
		delete(sh.m, id)
	}
	sh.mu.Unlock()
	if w != nil {
		a.pending.Add(-1)
	}
	return w
}

// forget removes the waiter of a publish that could not be sent.
func (a *acks) forget(reply string) {
	if id, ok := a.idOf(reply); ok {
		if w := a.take(id); w != nil {
			release(w)
		}
	}
}

// release puts back a waiter whose channel is empty.
func release(w *waiter) { waiterPool.Put(w) }

func (a *acks) idOf(subject string) (uint64, bool) {
	if len(subject) <= len(a.prefix) {
		return 0, false
	}
	id, err := strconv.ParseUint(subject[len(a.prefix):], 36, 64)
	return id, err == nil
}

// handle is the subscription's handler: it hands an acknowledgement to its
// waiter.
func (a *acks) handle(m *nats.Msg) {
	id, ok := a.idOf(m.Subject)
	if !ok {
		return
	}
	w := a.take(id)
	if w == nil {
		return // expired meanwhile
	}
	w.ch <- parseAck(m)
}

// sweep fails the waiters expired at now.
func (a *acks) sweep(now int64) {
	a.failAll(func(w *waiter) bool { return w.expires <= now }, errAckTimeout)
}

// failAll fails the waiters for which match is true with err.
func (a *acks) failAll(match func(*waiter) bool, err error) {
	for i := range a.shards {
		sh := &a.shards[i]
		sh.mu.Lock()
		for id, w := range sh.m {
			if match(w) {
				delete(sh.m, id)
				a.pending.Add(-1)
				w.ch <- ackResult{err: err}
			}
		}
		sh.mu.Unlock()
	}
}

// parseAck reads a JetStream publish acknowledgement: a status message (503:
// no responders), or a JSON PubAck or API error.
func parseAck(m *nats.Msg) ackResult {
	if len(m.Data) == 0 {
		if m.Header.Get("Status") == "503" {
			return ackResult{err: nats.ErrNoResponders}
		}
		return ackResult{err: jetstream.ErrInvalidJSAck}
	}
	d := m.Data
	if bytes.Contains(d, []byte(`"error"`)) {
		return ackResult{err: parseAPIError(d)}
	}
	var r ackResult
	var ok bool
	r.ack.Stream, ok = jsonString(d, `"stream":`)
	if !ok || r.ack.Stream == "" {
		return ackResult{err: jetstream.ErrInvalidJSAck}
	}
	if r.ack.Sequence, ok = jsonUint(d, `"seq":`); !ok {
		return ackResult{err: jetstream.ErrInvalidJSAck}
	}
	r.ack.Duplicate = jsonTrue(d, `"duplicate":`)
	return r
}

// parseAPIError reads {"error":{"code":N,"err_code":N,"description":"..."}}
// with encoding/json: errors are rare.
func parseAPIError(d []byte) error {
	var resp struct {
		Error *jetstream.APIError `json:"error"`
	}
	if err := json.Unmarshal(d, &resp); err != nil || resp.Error == nil {
		return jetstream.ErrInvalidJSAck
	}
	return resp.Error
}

// jsonString returns the string value after key in the flat JSON object d
// (JetStream writes stream names without escapes).
func jsonString(d []byte, key string) (string, bool) {
	i := bytes.Index(d, []byte(key))
	if i < 0 {
		return "", false
	}
	rest := bytes.TrimLeft(d[i+len(key):], " ")
	if len(rest) == 0 || rest[0] != '"' {
		return "", false
	}
	end := bytes.IndexByte(rest[1:], '"')
	if end < 0 || bytes.IndexByte(rest[1:end+1], '\\') >= 0 {
		return "", false
	}
	return string(rest[1 : end+1]), true
}

// jsonTrue tells whether the value after key in the flat JSON object d is
// true (JetStream writes "duplicate": true, with a space).
func jsonTrue(d []byte, key string) bool {
	i := bytes.Index(d, []byte(key))
	return i >= 0 && bytes.HasPrefix(bytes.TrimLeft(d[i+len(key):], " "), []byte("true"))
}

// jsonUint returns the unsigned number after key in the flat JSON object d.
func jsonUint(d []byte, key string) (uint64, bool) {
	i := bytes.Index(d, []byte(key))
	if i < 0 {
		return 0, false
	}
	rest := bytes.TrimLeft(d[i+len(key):], " ")
	n := 0
	for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
		n++
	}
	if n == 0 {
		return 0, false
	}
	v, err := strconv.ParseUint(string(rest[:n]), 10, 64)
	return v, err == nil
}
