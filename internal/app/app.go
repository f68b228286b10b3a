// Package app wires the Pillarbox Event Dispatcher together: configuration
// from flags and environment, logging, the server, and graceful shutdown. It
// is the whole program but for the process-level concerns left to main
// (signals and the exit code), so tests can run it in-process.
package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

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
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	st, err := parseSettings(args, getenv, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if st.version {
		_, err := fmt.Fprintln(stdout, Version)
		return err
	}
	st.server.Version = Version
	log := newLogger(stderr, st.logFormat, st.logLevel)

	srv, err := server.New(st.server, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", st.server.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", st.server.Addr, err)
	}
	log.Info("listening", append([]any{"addr", ln.Addr().String(), "version", Version}, configAttrs(st)...)...)

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}

	start := time.Now()
	log.Info("shutting down", "listeners", srv.Listeners(), "timeout", st.server.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), st.server.ShutdownTimeout)
	defer cancel()
	err = srv.Shutdown(sctx)
	if serr := <-served; serr != nil {
		log.Error("serve", "error", serr)
	}
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped", "took", time.Since(start).Round(time.Millisecond))
	return nil
}

func newLogger(w io.Writer, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// configAttrs lists the effective configuration for the start-up log line.
// The publish token is reported as set or not, never printed.
func configAttrs(st settings) []any {
	c := st.server
	proxies := make([]string, len(c.TrustedProxies))
	for i, p := range c.TrustedProxies {
		proxies[i] = p.String()
	}
	return []any{slog.Group("config",
		"max_body", c.MaxBody,
		"heartbeat", c.Heartbeat,
		"buffer", c.Buffer,
		"max_listeners", c.MaxListeners,
		"cors_origins", strings.Join(c.CORSOrigins, ","),
		"ip_field", c.IPField,
		"trusted_proxies", strings.Join(proxies, ","),
		"publish_token", c.PublishToken != "",
		"write_timeout", c.WriteTimeout,
		"lag_policy", c.LagPolicy,
		"linger", c.Linger,
		"retry", c.Retry,
		"shutdown_timeout", c.ShutdownTimeout,
		"log_level", st.logLevel.String(),
		"log_format", st.logFormat,
	)}
}
