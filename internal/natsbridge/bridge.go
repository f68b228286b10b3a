package natsbridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Connection and consumer tuning. The values favour noticing trouble within
// a few seconds over saving a few idle messages per second.
const (
	dialTimeout     = 2 * time.Second
	reconnectWait   = 500 * time.Millisecond
	reconnectJitter = 250 * time.Millisecond
	pingInterval    = 5 * time.Second // a silent dead server is noticed in 15 s
	maxPingsOut     = 3
	// maxPending caps acknowledgements awaited at once on the connection: a
	// publish beyond it fails at once (ErrUnavailable).
	maxPending = 16384
	// batchSlots caps the atomic batches this bridge has open at once: the
	// server allows 50 per stream by default, shared by every instance.
	batchSlots = 8
	// replaySlots caps the replays open at once (each one is a consumer).
	replaySlots = 4
	// maxAPITimeout bounds each control request (stream info, consumer
	// creation): a request that got no answer is sent again rather than
	// waited for, so that nothing waits long on a server that is gone.
	maxAPITimeout = time.Second
)

// Bridge publishes events to the stream and hands the stream's messages to a
// Handler. Create it with New, start it with Start, and stop it with Close.
// Its methods are safe for concurrent use.
type Bridge struct {
	handler Handler
	log     *slog.Logger
	nc      *nats.Conn          // set by Start, then read-only
	js      jetstream.JetStream // set by Start, then read-only
	acks    *acks               // the publishes awaiting an acknowledgement (acks.go)
	ctx     context.Context     // canceled when Close gives up waiting
	cancel  context.CancelFunc
	// probeCtx ends the prober and its probes, at Close.
	probeCtx    context.Context
	probeCancel context.CancelFunc
	probes      sync.WaitGroup // the prober and its probes
	// lastOK is when the latest request that the stream answered with a
	// leader was sent (Unix ns): a failure of a request sent before it is
	// stale news.
	lastOK atomic.Int64
	// lastFail is when the latest request that failed for want of the
	// stream was sent (Unix ns): a success of a request sent before it is
	// stale news too.
	lastFail atomic.Int64
	// down is closed when the bridge stops being publishable, and replaced:
	// a publish waits for its acknowledgement, or for the channel it loaded
	// when it was sent to close.
	down atomic.Pointer[chan struct{}]

	wake        chan struct{} // cap 1: the connection changed or a reset was asked
	probeWake   chan struct{} // cap 1: publishing failed, or the connection changed
	joined      chan struct{} // closed when the bridge first joins the stream
	fatal       chan error    // cap 1: a definite fault found while joining
	done        chan struct{} // closed when the supervisor returns
	batchSlots  chan struct{}
	replaySlots chan struct{}

	cfg   Config
	stats counters

	// lastSeq is the sequence last handed to the handler: written by the
	// supervisor, read by Status.
	lastSeq atomic.Uint64
	// nextSeq is the sequence the live consumer hands to the handler next:
	// stored by the supervisor with mu held when a session sets its cursor
	// (with identity), and without it after each message; read by Position
	// with mu held, so that it goes with identity.
	nextSeq atomic.Uint64

	// mu guards iter (the live consumer's iterator, nil between sessions),
	// identity, reason, pubReason, server, resetAsked and state. Fields are
	// ordered for size.
	iter     jetstream.MessagesContext
	identity Identity
	reason   string
	// pubReason says why publishing is not possible now ("" when it is).
	pubReason string
	// server is the URL (redacted) of the server connected to, "" while
	// disconnected: kept by the connection handlers, because the client's
	// own accessors take its lock, which it holds through every
	// connection attempt (up to dialTimeout each).
	server   string
	mu       sync.Mutex
	joinOnce sync.Once
	// ready is set while the live consumer reads the stream on the current
	// connection and no conflict is known.
	ready atomic.Bool
	// publishable is set while the stream answers with a leader and
	// acknowledges publishes (see health.go); Publish checks it first. Its
	// store publishes nc and js to the publishers that load it.
	publishable atomic.Bool
	atomicBatch atomic.Bool // the stream allows atomic batch publish
	started     atomic.Bool
	closing     atomic.Bool
	resetAsked  bool // guarded by mu
	// streamOutage is set, with mu held, when publishing stopped for a
	// reason of the stream's (not of the connection's).
	streamOutage bool
	state        State // guarded by mu
}

// New checks cfg (Validate, and that the credentials and TLS files can be
// opened) and returns a bridge that will call h for every message of the
// stream. It opens no connection: Start does. log may be nil (no logging).
// h must not be nil.
func New(cfg Config, h Handler, log *slog.Logger) (*Bridge, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := cfg.checkFiles(); err != nil {
		return nil, err
	}
	if h == nil {
		return nil, fmt.Errorf("%w: nil handler", ErrInvalidConfig)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	pctx, pcancel := context.WithCancel(context.Background())
	b := &Bridge{
		handler:     h,
		log:         log,
		ctx:         ctx,
		cancel:      cancel,
		probeCtx:    pctx,
		probeCancel: pcancel,
		cfg:         cfg.withDefaults(),
		wake:        make(chan struct{}, 1),
		probeWake:   make(chan struct{}, 1),
		joined:      make(chan struct{}),
		fatal:       make(chan error, 1),
		done:        make(chan struct{}),
		batchSlots:  make(chan struct{}, batchSlots),
		replaySlots: make(chan struct{}, replaySlots),
		acks:        newAcks(),
	}
	b.down.Store(newDown())
	return b, nil
}

// Start connects to NATS, makes sure the stream exists with compatible
// settings (creating it if needed), and starts consuming it from its next
// message. It returns when the bridge has joined the stream; at once when
// the first connection attempt failed (NATS is down: waiting would only hold
// the caller); or after Config.StartTimeout from the call (or when ctx ends)
// if a server was reached but the stream could not be joined. The one thing
// that may hold it longer is the first connection attempt, which tries each
// server in turn for up to 2 s (a server that accepts connections and does
// not answer). The bridge then keeps trying in the background, and Publish
// fails with ErrUnavailable until it can publish. Start returns an error only
// for a definite fault: an invalid configuration (ErrInvalidConfig), a
// conflicting stream (ErrConflict) or no JetStream (ErrNoJetStream); the
// bridge is then closed. Start may be called once.
func (b *Bridge) Start(ctx context.Context) error {
	if b.closing.Load() {
		return ErrClosed
	}
	if !b.started.CompareAndSwap(false, true) {
		return ErrStarted
	}
	// The time the first connection attempt takes counts: it tries every
	// server in turn, each up to dialTimeout, and a server that accepts
	// connections but does not answer holds it that long.
	deadline := time.Now().Add(b.cfg.StartTimeout)
	urls, _ := splitURLs(b.cfg.URLs) // validated by New
	nc, err := nats.Connect(strings.Join(urls, ","), b.natsOptions()...)
	if err != nil {
		b.closeUnstarted()
		return fmt.Errorf("%w: connect: %w", ErrInvalidConfig, err)
	}
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(maxPending),
		jetstream.WithPublishAsyncTimeout(b.cfg.PublishTimeout),
		jetstream.WithDefaultTimeout(b.apiTimeout()))
	if err != nil {
		nc.Close()
		b.closeUnstarted()
		return fmt.Errorf("%w: jetstream: %w", ErrInvalidConfig, err)
	}
	if _, err := nc.Subscribe(b.acks.prefix+"*", b.acks.handle); err != nil {
		nc.Close()
		b.closeUnstarted()
		return fmt.Errorf("%w: subscribe: %w", ErrInvalidConfig, err)
	}
	b.mu.Lock()
	b.nc, b.js = nc, js
	b.state, b.reason, b.pubReason = StateJoining, "connecting", "connecting"
	b.mu.Unlock()
	b.probes.Add(2)
	go b.prober()
	go b.sweeper()
	go b.run()

	if !nc.IsConnected() {
		b.log.Warn("nats unreachable, retrying in the background",
			"urls", b.cfg.URLs, "stream", b.cfg.Stream, "reason", b.Status().Reason)
		return nil
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-b.joined:
		return nil
	case err := <-b.fatal:
		cctx, cancel := context.WithTimeout(context.Background(), b.cfg.StartTimeout)
		defer cancel()
		_ = b.Close(cctx)
		return err
	case <-t.C:
	case <-ctx.Done():
	}
	b.log.Warn("nats not joined yet, retrying in the background",
		"urls", b.cfg.URLs, "stream", b.cfg.Stream, "reason", b.Status().Reason)
	return nil
}

// closeUnstarted marks a bridge whose Start failed before anything ran as
// closed.
func (b *Bridge) closeUnstarted() {
	close(b.done)
	b.closing.Store(true)
	b.probeCancel()
	b.cancel()
}

func (b *Bridge) natsOptions() []nats.Option {
	opts := []nats.Option{
		nats.Name(b.cfg.Name),
		nats.Timeout(dialTimeout),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(reconnectWait),
		nats.ReconnectJitter(reconnectJitter, reconnectJitter),
		// Fail publishes at once while disconnected, rather than buffering
		// them to send after a reconnect that may never come.
		nats.ReconnectBufSize(-1),
		nats.RetryOnFailedConnect(true),
		nats.PingInterval(pingInterval),
		nats.MaxPingsOutstanding(maxPingsOut),
		nats.ConnectHandler(b.onConnect),
		nats.ReconnectHandler(b.onReconnect),
		nats.DisconnectErrHandler(b.onDisconnect),
		nats.ErrorHandler(b.onAsyncError),
	}
	if b.cfg.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(b.cfg.CredsFile))
	}
	if b.cfg.TLSCA != "" {
		opts = append(opts, nats.RootCAs(b.cfg.TLSCA))
	}
	if b.cfg.TLSCert != "" {
		opts = append(opts, nats.ClientCert(b.cfg.TLSCert, b.cfg.TLSKey))
	}
	return opts
}

func (b *Bridge) onConnect(nc *nats.Conn) {
	b.log.Info("nats connected", "server", b.setServer(nc))
	b.signal()
	b.wakeProber()
}

func (b *Bridge) onReconnect(nc *nats.Conn) {
	b.stats.reconnects.Add(1)
	b.log.Info("nats reconnected", "server", b.setServer(nc))
	// The consumer may be gone with the server it lived on (ephemeral, in
	// memory), and so may a stream kept in memory: start over. Publishing
	// waits for the stream to answer through the new server.
	b.askReset()
	b.wakeProber()
}

func (b *Bridge) onDisconnect(_ *nats.Conn, err error) {
	if b.closing.Load() {
		return
	}
	reason := "disconnected"
	if err != nil {
		reason = "disconnected: " + err.Error()
	}
	b.mu.Lock()
	b.ready.Store(false)
	b.publishable.Store(false)
	b.reason, b.pubReason, b.server = reason, reason, ""
	if b.state == StateReady {
		b.state = StateDisconnected
	}
	b.mu.Unlock()
	b.log.Warn("nats disconnected", "err", err)
	// The acknowledgements awaited would come on a connection that is gone.
	b.acks.failAll(func(*waiter) bool { return true }, nats.ErrDisconnected)
	b.askReset()
}

// wakeProber makes the prober probe the stream now.
func (b *Bridge) wakeProber() {
	select {
	case b.probeWake <- struct{}{}:
	default:
	}
}

// setServer records the server nc is connected to, and returns its URL. It
// runs on the client's callback goroutine, which may wait for the client's
// lock.
func (b *Bridge) setServer(nc *nats.Conn) string {
	url := nc.ConnectedUrlRedacted()
	b.mu.Lock()
	if b.state != StateClosed {
		b.server = url
	}
	b.mu.Unlock()
	return url
}

func (b *Bridge) onAsyncError(_ *nats.Conn, sub *nats.Subscription, err error) {
	subject := ""
	if sub != nil {
		subject = sub.Subject
	}
	b.log.Warn("nats async error", "subject", subject, "err", err)
}

// signal wakes the supervisor without blocking.
func (b *Bridge) signal() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// askReset makes the supervisor replace the consumer: the current iterator is
// stopped, so its Next returns at once.
func (b *Bridge) askReset() {
	b.mu.Lock()
	b.resetAsked = true
	if b.iter != nil {
		b.iter.Stop()
	}
	b.mu.Unlock()
	b.signal()
}

// Status returns a snapshot of the bridge's state. It does not block on the
// network, nor on the NATS client (which holds its lock while it dials).
func (b *Bridge) Status() Status {
	b.mu.Lock()
	st := Status{State: b.state, Reason: b.reason, Identity: b.identity, Server: b.server,
		Publishable: b.publishable.Load(), PublishReason: b.pubReason}
	b.mu.Unlock()
	if st.Publishable {
		st.PublishReason = ""
	} else if st.PublishReason == "" {
		st.PublishReason = st.Reason
	}
	st.LastSeq = b.lastSeq.Load()
	st.AtomicBatches = b.atomicBatch.Load()
	st.Connected = st.Server != ""
	if st.State == StateReady {
		st.Reason = ""
	}
	return st
}

// Position returns the stream incarnation the live consumer reads and the
// sequence it hands to the handler next: every message of that incarnation
// below it was handed over before Position returned (or precedes the
// consumer's start, at the stream's end when the bridge first joined), and
// none from it on. It returns a zero Identity before the bridge first
// joined. It does not block on the network.
func (b *Bridge) Position() (Identity, uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.identity, b.nextSeq.Load()
}

// Stats returns the counters. It takes no lock and does not allocate.
func (b *Bridge) Stats() Stats { return b.stats.snapshot() }

// Close stops the bridge: publishes fail with ErrClosed from then on, the
// consumer stops asking for messages, the messages already received are handed
// to the handler, publishes in flight get their acknowledgements, and the
// connection is closed. It returns ctx's error if that took longer than ctx
// allows, after cutting everything short (a handler that never returns keeps
// its goroutine). Calling Close again returns nil at once.
func (b *Bridge) Close(ctx context.Context) error {
	if !b.closing.CompareAndSwap(false, true) {
		return nil
	}
	b.mu.Lock()
	b.ready.Store(false)
	b.publishable.Store(false)
	b.state, b.reason, b.pubReason, b.server = StateClosed, "closed", "closed", ""
	nc, js := b.nc, b.js
	if b.iter != nil {
		b.iter.Drain()
	}
	b.mu.Unlock()
	defer b.cancel()
	// The prober asks nothing more; its probes in flight end now.
	b.probeCancel()
	defer b.probes.Wait()
	if nc == nil {
		return nil
	}
	b.signal()
	var err error
	select {
	case <-b.done:
	case <-ctx.Done():
		err = ctx.Err()
		b.mu.Lock()
		if b.iter != nil {
			b.iter.Stop()
		}
		b.mu.Unlock()
		b.cancel()
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		err = ctx.Err()
	}
	for b.acks.pending.Load() > 0 && ctx.Err() == nil && nc.IsConnected() {
		time.Sleep(sweepInterval / 5)
	}
	if ctx.Err() != nil {
		err = ctx.Err()
	}
	nc.Close()
	if err != nil {
		b.log.Warn("nats bridge closed before finishing", "err", err)
		return fmt.Errorf("natsbridge: close: %w", err)
	}
	return nil
}

// setJoined records that the bridge reads identity id with a live consumer,
// and that the stream answered with a leader when leader is set (the
// answers of the join count as sent now: it created the stream if it had
// to, which a probe sent meanwhile did not find). The bridge
// becomes ready only if nothing asked for a reset meanwhile (a disconnect,
// say, whose handler may have run while the session was joining): the
// session then ends at once and the next one joins again.
func (b *Bridge) setJoined(id Identity, leader bool) {
	b.mu.Lock()
	if b.state != StateClosed && !b.resetAsked && !b.closing.Load() {
		b.state, b.reason, b.identity = StateReady, "", id
		b.ready.Store(true)
	}
	b.mu.Unlock()
	if leader {
		b.canPublishNow(time.Now().UnixNano())
	}
	b.joinOnce.Do(func() { close(b.joined) })
}

// setTrouble records why the bridge is not ready.
func (b *Bridge) setTrouble(state State, reason string) {
	b.mu.Lock()
	if b.state != StateClosed {
		if state == StateJoining && b.state != StateNew && b.state != StateJoining {
			state = StateDisconnected
		}
		b.state, b.reason = state, reason
	}
	b.mu.Unlock()
}

// isDefinite tells whether err is a fault retrying will not cure.
func isDefinite(err error) bool {
	return errors.Is(err, ErrConflict) || errors.Is(err, ErrNoJetStream)
}
