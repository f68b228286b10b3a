// Package natstest runs NATS servers with JetStream for tests: embedded in the
// test process (one server, or a cluster of three joined by routes), or the
// real nats-server binary as a child process.
//
// Every server listens on a random loopback port and keeps its JetStream store
// in a temporary directory of the test; all of them are stopped by the test's
// cleanup. A stopped server can be started again on the same port and store,
// which is how tests simulate a NATS restart. Nothing here is safe for
// concurrent use by several goroutines unless a doc comment says so: a test
// drives its servers from its own goroutine.
package natstest

import (
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// readyTimeout bounds how long a server may take to accept connections.
const readyTimeout = 15 * time.Second

// Server is one nats-server embedded in the test process, with JetStream.
type Server struct {
	srv  *server.Server
	opts server.Options // as last started; Port is fixed after the first start
	dir  string
}

// Options are an embedded server's options.
type Options = server.Options

// Option changes the options of an embedded server before it first starts;
// they are kept for every restart.
type Option func(*Options)

// RunServer starts an embedded server with JetStream on a random loopback port,
// its store in a new temporary directory of tb, and stops it at tb's cleanup.
// It fails tb if the server does not accept connections within 15 s.
func RunServer(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	o := baseOptions("natstest", tb.TempDir())
	for _, opt := range opts {
		opt(&o)
	}
	s := &Server{opts: o, dir: o.StoreDir}
	s.start(tb)
	tb.Cleanup(s.Shutdown)
	return s
}

// baseOptions are the options of every embedded server: loopback, random port,
// JetStream with a bounded store, no signal handlers, no log.
func baseOptions(name, dir string) server.Options {
	return server.Options{
		ServerName:         name,
		Host:               "127.0.0.1",
		Port:               server.RANDOM_PORT,
		NoLog:              true,
		NoSigs:             true,
		JetStream:          true,
		JetStreamMaxMemory: 256 << 20,
		JetStreamMaxStore:  1 << 30,
		StoreDir:           dir,
	}
}

func (s *Server) start(tb testing.TB) {
	tb.Helper()
	o := s.opts
	srv, err := server.NewServer(&o)
	if err != nil {
		tb.Fatalf("natstest: new server %s: %v", s.opts.ServerName, err)
	}
	srv.Start()
	if !srv.ReadyForConnections(readyTimeout) {
		srv.Shutdown()
		srv.WaitForShutdown()
		tb.Fatalf("natstest: server %s not ready within %v", s.opts.ServerName, readyTimeout)
	}
	// Keep the port chosen at the first start, so a restart comes back on it
	// and clients reconnect to the URL they were given.
	if addr, ok := srv.Addr().(*net.TCPAddr); ok {
		s.opts.Port = addr.Port
	}
	s.srv = srv
}

// URL is the server's client URL, nats://127.0.0.1:<port>. It stays the same
// across restarts.
func (s *Server) URL() string {
	return "nats://" + net.JoinHostPort(s.opts.Host, strconv.Itoa(s.opts.Port))
}

// StoreDir is the directory of the server's JetStream store.
func (s *Server) StoreDir() string { return s.dir }

// Name is the server's name (server_name).
func (s *Server) Name() string { return s.opts.ServerName }

// Running tells whether the server is started and not shut down.
func (s *Server) Running() bool { return s.srv != nil && s.srv.Running() }

// Embedded returns the running server, for tests that need its own API
// (JetStreamIsLeader, for instance); nil while it is stopped.
func (s *Server) Embedded() *server.Server { return s.srv }

// Shutdown stops the server and waits until it has released its port and
// store. It does nothing if the server is already stopped.
func (s *Server) Shutdown() {
	if s.srv == nil {
		return
	}
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
	s.srv = nil
}

// Restart starts the server again on the same port and store directory,
// stopping it first if it is running. A stream kept in memory is gone after a
// restart; one kept in files is recovered.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	s.Shutdown()
	// The port may linger for a moment after the listener is closed.
	deadline := time.Now().Add(readyTimeout)
	for {
		ln, err := net.Listen("tcp", net.JoinHostPort(s.opts.Host, strconv.Itoa(s.opts.Port)))
		if err == nil {
			_ = ln.Close()
			break
		}
		if time.Now().After(deadline) {
			tb.Fatalf("natstest: port %d still in use: %v", s.opts.Port, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.start(tb)
}

// freePort asks the kernel for a free loopback TCP port. Another process may
// take it before it is used; tests accept that small risk.
func freePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("natstest: free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// String names the server and its URL, for failure messages.
func (s *Server) String() string { return fmt.Sprintf("%s(%s)", s.opts.ServerName, s.URL()) }
