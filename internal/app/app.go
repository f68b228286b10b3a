// Package app wires the Pillarbox Event Dispatcher together: configuration
// from flags and environment, logging, the parts of the service, and their
// lifecycle. It is the whole program but for the process-level concerns left
// to main (signals and the exit code), so tests can run it in-process.
//
// # Lifecycle
//
// Run is the one owner of every part. It starts them in this order, and
// every start-up error releases what was already started:
//
//  1. the descriptor limit (raised to its maximum; it sizes the listener
//     limit);
//  2. the fan-out ring;
//  3. the hang-up watcher;
//  4. with -nats-url, the NATS bridge (created, not started);
//  5. the HTTP server (which starts nothing until it serves);
//  6. the bridge's start: bounded; it fails only for a definite fault (a
//     stream whose settings conflict); an unreachable NATS is joined later;
//  7. the TCP listener, then serving.
//
// It stops them in the reverse order when its context is done: the server
// drains (not ready; POSTs get 503, new listeners a retry hint); the bridge
// stops consuming and hands the ring what it already received; the ring is
// closed (every stream delivers what it holds and ends on a retry hint); the
// server shuts down (after a short grace for open connections, streams still
// stuck are cut); the watcher is closed; the verifier of signed tokens is
// closed (with a JWKS, its refresh stops).
package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/hangup"
	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/jwtauth"
	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/metrics"
	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/natsbridge"
	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/fanout"
	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/server"
)

// Version is the service's version, set at build time with
// -ldflags "-X github.com/SRGSSR/pillarbox-event-dispatcher/internal/app.Version=v1.2.3".
var Version = "dev"

// Run runs the service until ctx is done, then shuts it down gracefully. args
// are the command-line arguments without the program name; getenv looks up
// environment variables. Logs go to stderr; -help and -version print to
// stdout. It returns nil after a clean shutdown or -help, an error wrapping
// ErrUsage for a bad setting, and any other error otherwise.
//
// With -healthcheck URL it starts nothing: it checks URL once and returns
// nil on a 2xx answer, an error of one line otherwise.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	st, err := parseSettings(args, getenv, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if st.version {
		_, err := fmt.Fprintln(stdout, versionLine())
		return err
	}
	if st.healthcheck != "" {
		return healthcheck(ctx, st.healthcheck)
	}
	st.server.Version = Version
	log := newLogger(stderr, st.logFormat, st.logLevel)
	st.applyDescriptorLimit(log)

	p, err := start(&st, log)
	if err != nil {
		return err
	}
	return p.run(ctx)
}

// parts are the running service's parts, in start order.
type parts struct {
	log     *slog.Logger
	ring    *fanout.Ring
	watcher *hangup.Watcher    // nil where unsupported
	tokens  *jwtauth.Verifier  // nil without a -jwt-* key
	bridge  *natsbridge.Bridge // nil without -nats-url
	srv     *server.Server
	pprof   *pprofServer // nil without -pprof-addr
	ln      net.Listener
	st      settings
}

// start creates the parts in order; on error it closes what it created.
func start(st *settings, log *slog.Logger) (_ *parts, err error) {
	p := &parts{log: log, st: *st}
	defer func() {
		if err != nil {
			p.close()
		}
	}()
	// The default topic always exists: producers creating topics can never
	// make it refuse events.
	p.ring = fanout.New(fanout.Options{
		Size: st.buffer, MaxTopics: st.maxTopics, Permanent: []string{server.DefaultTopic},
		Matcher: server.FilterMatcher, MaxFilters: st.maxFilters,
	})
	if w, werr := hangup.New(); werr == nil {
		p.watcher = w
	} else {
		log.Info("hang-up detection unavailable; gone listeners are noticed at their next write", "error", werr)
	}
	m := metrics.New()
	deps := server.Deps{
		Ring: p.ring, Log: log,
		ObservePost: m.ObservePost, ObserveFanout: m.ObserveFanout, Metrics: m.Handler(),
	}
	if p.watcher != nil { // a nil *hangup.Watcher is no nil Watcher
		deps.Watcher = p.watcher
	}
	if st.jwt.Enabled() {
		if p.tokens, err = jwtauth.New(st.jwt, log); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUsage, err)
		}
		deps.Tokens = p.tokens.ForServer()
		log.Info("signed tokens", "algorithms", p.tokens.Algorithms())
	}
	if st.nats.URLs != "" {
		st.nats.Name = "pillarbox-event-dispatcher " + Version
		p.bridge, err = natsbridge.New(st.nats, func(d natsbridge.Delivery) { p.srv.Deliver(d) }, log)
		if err != nil {
			return nil, st.usageError(err)
		}
		deps.Bridge = p.bridge
	}
	p.srv, err = server.New(&st.server, deps)
	if err != nil {
		return nil, err
	}
	src := metrics.Sources{Server: p.srv, Bridge: p.bridge, AcceptRetries: p.srv.AcceptRetries, Version: Version, Commit: commit()}
	if p.watcher != nil {
		src.HangupErrors = p.watcher.Errors
	}
	m.Watch(src)
	if p.bridge != nil {
		if err = p.bridge.Start(context.Background()); err != nil {
			return nil, fmt.Errorf("nats: %w", err)
		}
		log.Info("nats", "state", p.bridge.Status().State.String(), "stream", st.nats.Stream, "url", redactURLs(st.nats.URLs))
	}
	if st.pprofAddr != "" {
		if p.pprof, err = listenPprof(st.pprofAddr); err != nil {
			return nil, err
		}
	}
	if p.ln, err = net.Listen("tcp", st.server.Addr); err != nil {
		return nil, fmt.Errorf("listen on %s: %w", st.server.Addr, err)
	}
	return p, nil
}

// close closes the parts that are not running, in reverse order.
func (p *parts) close() {
	if p.ln != nil {
		_ = p.ln.Close()
	}
	if p.pprof != nil {
		_ = p.pprof.ln.Close()
	}
	if p.bridge != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = p.bridge.Close(ctx)
		cancel()
	}
	if p.watcher != nil {
		_ = p.watcher.Close()
	}
	if p.tokens != nil {
		p.tokens.Close()
	}
	if p.ring != nil {
		_ = p.ring.Close()
	}
}

// run serves until ctx is done, then shuts the parts down in order.
func (p *parts) run(ctx context.Context) error {
	log := p.log
	log.Info("listening", append([]any{"addr", p.ln.Addr().String(), "version", Version}, configAttrs(&p.st)...)...)
	served := make(chan error, 1)
	go func() { served <- p.srv.Serve(p.ln) }()
	pprofDone := make(chan struct{})
	if p.pprof != nil {
		log.Info("serving profiles", "addr", p.pprof.ln.Addr().String())
		go func() { defer close(pprofDone); p.pprof.serve() }()
	} else {
		close(pprofDone)
	}
	defer func() { <-pprofDone }()
	select {
	case err := <-served:
		// The listener failed on its own: nothing is being served.
		_ = p.shutdown(context.Background())
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}

	began := time.Now()
	log.Info("shutting down", "listeners", p.srv.Listeners(), "timeout", p.st.shutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), p.st.shutdownTimeout)
	defer cancel()
	err := p.shutdown(sctx)
	if serr := <-served; serr != nil {
		log.Error("serve", "error", serr)
	}
	if err != nil {
		// Whatever was still open was closed at the deadline: the service is
		// stopped, as the shutdown timeout promises.
		log.Warn("shutdown deadline reached; remaining connections closed", "error", err,
			"took", time.Since(began).Round(time.Millisecond))
		return nil
	}
	log.Info("stopped", "took", time.Since(began).Round(time.Millisecond))
	return nil
}

// shutdown stops the parts in order (see the package documentation).
func (p *parts) shutdown(ctx context.Context) error {
	p.srv.Drain()
	if p.bridge != nil {
		// Half the time at most: the streams still have to end.
		bctx, cancel := context.WithTimeout(ctx, time.Until(deadlineOf(ctx))/2)
		if err := p.bridge.Close(bctx); err != nil {
			p.log.Warn("nats bridge close", "error", err)
		}
		cancel()
	}
	_ = p.ring.Close()
	err := p.srv.Shutdown(ctx)
	if p.watcher != nil {
		_ = p.watcher.Close()
	}
	if p.tokens != nil {
		p.tokens.Close() // stops the JWKS refresh
	}
	if p.pprof != nil {
		p.pprof.close(ctx)
	}
	return err
}

// deadlineOf returns ctx's deadline, or a few seconds from now if it has
// none.
func deadlineOf(ctx context.Context) time.Time {
	if d, ok := ctx.Deadline(); ok {
		return d
	}
	return time.Now().Add(3 * time.Second)
}

// redactURLs removes user information (passwords, tokens) from NATS URLs for
// the log.
func redactURLs(urls string) string {
	out := strings.Split(urls, ",")
	for i, u := range out {
		if parsed, err := url.Parse(strings.TrimSpace(u)); err == nil && parsed.User != nil {
			parsed.User = url.User("redacted")
			out[i] = parsed.String()
		}
	}
	return strings.Join(out, ",")
}

func newLogger(w io.Writer, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		opts.ReplaceAttr = readableDuration
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// readableDuration writes durations as Go writes them ("1.5s", "10m0s")
// rather than the JSON handler's nanoseconds, as the text handler does: the
// same figures in both formats, and one a person can read.
func readableDuration(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(a.Value.Duration().String())
	}
	return a
}

// configAttrs lists the effective configuration for the start-up log line.
// Tokens are reported as how many are set, never printed.
func configAttrs(st *settings) []any {
	c := st.server
	proxies := make([]string, len(c.TrustedProxies))
	for i, p := range c.TrustedProxies {
		proxies[i] = p.String()
	}
	return []any{slog.Group("config",
		"max_body", c.MaxBody,
		"max_batch", c.MaxBatch,
		"max_batch_events", c.MaxBatchEvents,
		"max_topics_per_listener", c.MaxListenerTopics,
		"send_buffer", c.SendBuffer,
		"max_header_bytes", c.MaxHeaderBytes,
		"heartbeat", c.Heartbeat,
		"buffer", st.buffer,
		"max_listeners", c.MaxListeners,
		"max_listeners_per_ip", c.MaxListenersPerIP,
		"max_topics", st.maxTopics,
		"cors_origins", strings.Join(c.CORSOrigins, ","),
		"ip_field", c.IPField,
		"trusted_proxies", strings.Join(proxies, ","),
		"publish_tokens", len(c.PublishTokens),
		"listen_tokens", len(c.ListenTokens),
		"no_query_token", c.NoQueryToken,
		"jwt", jwtSource(&st.jwt),
		"jwt_issuer", st.jwt.Issuer,
		"jwt_audience", st.jwt.Audience,
		"max_listeners_per_subject", c.MaxListenersPerSubject,
		"write_timeout", c.WriteTimeout,
		"header_timeout", c.HeaderTimeout,
		"lag_policy", c.LagPolicy,
		"streamer", c.Streamer,
		"linger", c.Linger,
		"write_budget", c.WriteBudget,
		"retry", c.Retry,
		"replay", c.Replay,
		"max_stream_age", c.MaxStreamAge,
		"viewer", c.Viewer,
		"pprof_addr", st.pprofAddr,
		"nats_url", redactURLs(st.nats.URLs),
		"nats_stream", st.nats.Stream,
		"shutdown_timeout", st.shutdownTimeout,
		"log_level", st.logLevel.String(),
		"log_format", st.logFormat,
	)}
}

// Commit is the source revision, set at build time like Version; when it is
// not, the revision the Go toolchain recorded is used.
var Commit = ""

// versionLine is what -version prints: version, commit and Go version.
func versionLine() string {
	return fmt.Sprintf("event_dispatcher %s (commit %s, %s)", Version, commit(), runtime.Version())
}

// commit returns Commit, or the revision the Go toolchain recorded, or
// "unknown".
func commit() string {
	if Commit != "" {
		return Commit
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "unknown"
}

// jwtSource says which key source signs JSON Web Tokens, for the start-up
// log: never the secret.
func jwtSource(c *jwtauth.Config) string {
	switch {
	case len(c.Secret) > 0:
		return "secret"
	case len(c.PublicKeyPEM) > 0:
		return "public key"
	case c.JWKSURL != "":
		return "jwks " + c.JWKSURL
	}
	return "off"
}
