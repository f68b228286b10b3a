// Command original runs the RE-IMPLEMENTATION OF THE ORIGINAL SERVICE'S
// DESIGN (package bench/original), for benchmark comparison only: one global
// mutex, an unbuffered channel per listener, blocking broadcasts, bodies
// re-encoded through map[string]any, headers sent only with the first event.
// Its faults are kept on purpose. It is not the service.
//
// As in the original there is no graceful shutdown: SIGINT or SIGTERM ends
// the process at once (Go's default for these signals), streams included.
//
//	go run ./bench/cmd/original -addr 127.0.0.1:9091
//	go run ./bench/cmd/original -port 8080      # the original's flag
package main

import (
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/SRGSSR/pillarbox-event-dispatcher/bench/original"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		log.Printf("original: %v", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("original", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:9091", "listen address")
	port := fs.String("port", "", "listen address in the original's forms (:8080, 8080 or host:port); overrides -addr")
	quiet := fs.Bool("quiet", false, "do not log the start line")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "original: re-implementation of the original service's design, for benchmark comparison only.\n\nUsage: original [flags]\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	listen := *addr
	if *port != "" {
		a, err := portAddr(*port)
		if err != nil {
			return fmt.Errorf("-port %q: %w", *port, err)
		}
		listen = a
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	if !*quiet {
		log.Printf("original: listening on http://%s (pid %d)", ln.Addr(), os.Getpid())
	}
	// The default server settings, as in the original: no timeouts.
	hs := &http.Server{Handler: original.New().Handler()} //nolint:gosec // G112: faithful to the original, which set no timeouts
	return hs.Serve(ln)
}

// portAddr accepts ":8080", "8080" and "host:port".
func portAddr(v string) (string, error) {
	if !strings.Contains(v, ":") {
		v = ":" + v
	}
	host, p, err := net.SplitHostPort(v)
	if err != nil {
		return "", err
	}
	if n, err := strconv.Atoi(p); err != nil || n < 0 || n > 65535 {
		return "", errors.New("port is not a number from 0 to 65535")
	}
	return net.JoinHostPort(host, p), nil
}
