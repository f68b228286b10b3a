package client

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// SubscribeOptions are the settings of [Client.Subscribe]; nil means the
// zero value: every topic, from now on, with resume, the default delays.
type SubscribeOptions struct {
	// Topics are the topics to receive (the service's ?topic=); none means
	// every event of every topic.
	Topics []string
	// Where are filter terms on the events' own fields (the service's
	// ?where=), each "<path>:<value>": the service sends only the events of
	// the topics whose fields match (terms on one path: any; on different
	// paths: all). See the service's README for the syntax and limits; a
	// malformed term makes Subscribe fail with a 400 ([ErrInvalid]).
	Where []string
	// Sample, when between 0 and 1, asks the service for that fraction of
	// the events (?sample=), the same subset for every listener with the
	// same fraction, chosen from the events' ids, and kept across
	// reconnections. 0 or 1: every event.
	Sample float64
	// LastEventID, when set, is the id of the last event received before:
	// the first connection asks to resume after it (Last-Event-ID), as a
	// reconnection does. The service then sends every event after it that
	// it still holds, or a gap event first when it cannot (see
	// [Event.Gap]). Empty: from now on.
	LastEventID string
	// DisableResume makes reconnections start from the live stream, without
	// Last-Event-ID (LastEventID still applies to the first connection):
	// events published while the subscription was reconnecting are lost,
	// and no gap event says so. For listeners that only want what is new.
	DisableResume bool
	// MinDelay is the shortest wait before a reconnection, whatever the
	// service's retry hint says; 0 means 100 ms.
	MinDelay time.Duration
	// MaxDelay is the longest wait before a reconnection, the service's
	// hint included, however many attempts failed; 0 means 30 s. A value
	// below MinDelay is raised to it.
	MaxDelay time.Duration
	// IdleTimeout, when positive, is how long a connection may stay silent
	// (not a byte, not even the service's heartbeat) before it is taken for
	// dead and replaced, with resume; it also bounds the wait for an answer
	// to each connection attempt. Set it to a few times the service's
	// -heartbeat (15 s by default). 0: never (the operating system's TCP
	// keep-alive still ends a connection to a vanished peer, after minutes).
	IdleTimeout time.Duration
}

// Defaults of SubscribeOptions.
const (
	defaultMinDelay = 100 * time.Millisecond
	defaultMaxDelay = 30 * time.Second
	// defaultRetry is the reconnection delay before the service sent a hint,
	// as browsers' (the service sends one when a stream opens).
	defaultRetry = 3 * time.Second
)

// Subscription is a stream of events from the service that survives the
// stream's end: [Client.Subscribe] opens it, [Subscription.Next] returns its
// events one at a time, [Subscription.Close] ends it.
//
// When the stream ends or fails (the service ended it at its maximum age or
// at shutdown, turned the listener away because it is full, the network
// failed), the subscription reconnects by itself after the service's retry
// hint (at least MinDelay, at most MaxDelay), doubling the wait after each
// attempt that fails in a row (no stream, or a stream that ended without
// greeting or event), with random jitter so that listeners cut together do
// not come back together. It resumes after the last event it read, so that
// it loses nothing the service still holds and receives nothing twice; when
// the service could not resume exactly it says so with a gap event, which
// Next returns like any other. A refusal that trying again cannot change
// (400, 401, 403, another 4xx but 408 and 429, a 200 that is not an event
// stream) ends the subscription: Next returns it (an [*Error], or an error
// wrapping [ErrNotEventStream]).
//
// A Subscription has one goroutine of its own, from Subscribe to Close (or
// to the end of the subscription's context, or a refusal), which reads the
// stream and hands the events over to Next through a small buffer: it reads
// about 32 events ahead of the caller at most, and the service sees a
// listener that stops calling Next as one that stops reading (it then loses its
// oldest events, and learns so with a gap). Next may be called by one
// goroutine at a time; LastEventID and Close by any goroutine at any time.
type Subscription struct {
	client *Client
	http   *http.Client // client.httpClient() without its Timeout
	url    string
	opts   SubscribeOptions
	events chan Event
	// done is closed when the goroutine has returned; err is then why.
	done   chan struct{}
	err    error
	cancel context.CancelCauseFunc
	// mu guards lastID: the id of the last event Next returned.
	mu     sync.Mutex
	lastID string
	closed atomic.Bool
	// The goroutine's own state.
	resumeID string        // the last event ID string of the streams read
	hint     time.Duration // the service's last retry hint
	after    time.Duration // a Retry-After to honour at the next wait
}

// eventsAhead is how many events the goroutine reads ahead of Next.
const eventsAhead = 32

// Subscribe connects to the service's stream (GET /events) and returns a
// subscription to it, whose events [Subscription.Next] returns.
//
// Subscribe blocks until the service answers the first connection. On a 200
// the service has subscribed the listener: every event published from then
// on reaches it (unless the service turned the listener away, full or
// shutting down; the subscription then connects again after the service's
// hint). Any other outcome of the first connection is returned, and no
// subscription: an [*Error] for an answer of the service (401 for a missing
// listen token, 400 for a bad topic, a 503 from a proxy...), an error
// wrapping [ErrNotEventStream], or a [*url.Error] when the request failed on
// the way (the service is not running, say; [IsRetryable] tells).
//
// ctx bounds the subscription's whole life, not just the first connection:
// when it is done the subscription ends, and Next returns ctx's error (its
// cause, if set). The caller must call Close in every case. opts is copied;
// nil means the defaults. Subscribe allocates the subscription and starts
// its goroutine.
func (c *Client) Subscribe(ctx context.Context, opts *SubscribeOptions) (*Subscription, error) {
	var o SubscribeOptions
	if opts != nil {
		o = *opts
		o.Topics = slices.Clone(o.Topics)
		o.Where = slices.Clone(o.Where)
	}
	if o.MinDelay <= 0 {
		o.MinDelay = defaultMinDelay
	}
	if o.MaxDelay <= 0 {
		o.MaxDelay = defaultMaxDelay
	}
	o.MaxDelay = max(o.MaxDelay, o.MinDelay)
	q := url.Values{}
	for _, t := range o.Topics {
		q.Add("topic", t)
	}
	for _, w := range o.Where {
		q.Add("where", w)
	}
	if o.Sample != 0 && o.Sample != 1 {
		q.Set("sample", strconv.FormatFloat(o.Sample, 'g', -1, 64))
	}
	target, err := c.endpoint("events", q)
	if err != nil {
		return nil, err
	}
	// A stream lasts as long as it is wanted: the HTTP client's Timeout,
	// meant for publishing, does not apply to it.
	hc := *c.httpClient()
	hc.Timeout = 0
	s := &Subscription{
		client:   c,
		http:     &hc,
		url:      target,
		opts:     o,
		events:   make(chan Event, eventsAhead),
		done:     make(chan struct{}),
		lastID:   o.LastEventID,
		resumeID: o.LastEventID,
		hint:     defaultRetry,
	}
	ctx, s.cancel = context.WithCancelCause(ctx)
	cn, err := s.connect(ctx, o.LastEventID)
	if err != nil {
		s.cancel(ErrClosed)
		return nil, err
	}
	go s.run(ctx, cn)
	return s, nil
}

// Next returns the next event, in the order the service sent them: the
// events of the subscription's topics, each with its id, type and topic,
// and gap events (Event.Gap set), which say that events were lost at that
// point and how many if the service knows. It blocks until an event comes,
// ctx is done (it then returns ctx's error; the subscription goes on, and a
// later Next returns what comes next), or the subscription ends: Next then
// returns [ErrClosed] after Close, the subscription context's error (or
// cause) when it is done, or the refusal that ended it (an [*Error], an
// error wrapping [ErrNotEventStream] or [ErrTooLong]), after the events read
// before it; every call after the end returns that error again.
//
// Reconnections are not seen by the caller, but as the gap events they may
// bring. The returned Event is the caller's (its Data too); Next allocates
// nothing more than the reading of the event did.
func (s *Subscription) Next(ctx context.Context) (Event, error) {
	if s.closed.Load() {
		return Event{}, ErrClosed
	}
	select {
	case ev := <-s.events:
		return s.deliver(ev), nil
	default:
	}
	select {
	case ev := <-s.events:
		return s.deliver(ev), nil
	case <-s.done:
		if !s.closed.Load() {
			select {
			case ev := <-s.events: // read before the end
				return s.deliver(ev), nil
			default:
			}
		}
		return Event{}, s.err
	case <-ctx.Done():
		return Event{}, ctx.Err()
	}
}

// deliver records ev's id as the last one returned.
func (s *Subscription) deliver(ev Event) Event {
	s.mu.Lock()
	s.lastID = ev.ID
	s.mu.Unlock()
	return ev
}

// LastEventID returns the id of the last event Next returned (a gap event's
// is the one before it), or SubscribeOptions.LastEventID before the first.
// Keep it to subscribe again later, from another process even, where this
// subscription left off: pass it as SubscribeOptions.LastEventID. It is safe
// for concurrent use and does not block.
func (s *Subscription) LastEventID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastID
}

// Close ends the subscription: it closes the connection, stops the
// goroutine and waits for it to return, so that nothing of the
// subscription is left when it returns; events read ahead and not returned
// by Next are dropped. A Next blocked in another goroutine returns
// [ErrClosed], as every later one does. Close is idempotent, safe for
// concurrent use, and always returns nil.
func (s *Subscription) Close() error {
	s.closed.Store(true)
	s.cancel(ErrClosed)
	<-s.done
	return nil
}
