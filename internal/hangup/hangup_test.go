//go:build linux

package hangup_test

import (
	"errors"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/hangup"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// pair returns both ends of a loopback TCP connection.
func pair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { _ = server.Close(); _ = client.Close() })
	return server, client
}

func newWatcher(t *testing.T) *hangup.Watcher {
	t.Helper()
	w, err := hangup.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	return w
}

func TestReportsPeerGone(t *testing.T) {
	for _, tc := range []struct {
		name string
		gone func(c *net.TCPConn)
	}{
		{"close", func(c *net.TCPConn) { _ = c.Close() }},
		{"reset", func(c *net.TCPConn) { _ = c.SetLinger(0); _ = c.Close() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWatcher(t)
			server, client := pair(t)
			fired := make(chan struct{})
			if _, err := w.Add(server, func() { close(fired) }); err != nil {
				t.Fatal(err)
			}
			tc.gone(client.(*net.TCPConn))
			select {
			case <-fired:
			case <-time.After(10 * time.Second):
				t.Fatal("hang-up not reported within 10s")
			}
			if n := w.Len(); n != 0 {
				t.Errorf("Len after report: %d, want 0", n)
			}
		})
	}
}

func TestQuietWhileConnected(t *testing.T) {
	w := newWatcher(t)
	server, client := pair(t)
	fired := make(chan struct{}, 1)
	reg, err := w.Add(server, func() { fired <- struct{}{} })
	if err != nil {
		t.Fatal(err)
	}
	// Traffic in both directions is not a hang-up.
	if _, err := client.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if _, err := server.Write([]byte("world")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := client.Read(buf); err != nil {
		t.Fatal(err)
	}
	select {
	case <-fired:
		t.Fatal("reported a hang-up on a live connection")
	case <-time.After(100 * time.Millisecond):
	}
	if w.Len() != 1 {
		t.Fatalf("Len: %d, want 1", w.Len())
	}
	w.Remove(reg)
	_ = client.Close()
	select {
	case <-fired:
		t.Fatal("reported after Remove")
	case <-time.After(100 * time.Millisecond):
	}
}

func TestRemoveAfterCloseIsHarmless(t *testing.T) {
	w := newWatcher(t)
	server, _ := pair(t)
	reg, err := w.Add(server, func() {})
	if err != nil {
		t.Fatal(err)
	}
	_ = server.Close()
	w.Remove(reg)
	w.Remove(hangup.Registration{})
}

func TestUnsupportedConn(t *testing.T) {
	w := newWatcher(t)
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if _, err := w.Add(a, func() {}); err != hangup.ErrUnsupported {
		t.Fatalf("Add(net.Pipe): got %v, want ErrUnsupported", err)
	}
}

func TestAddAfterClose(t *testing.T) {
	w, err := hangup.New()
	if err != nil {
		t.Fatal(err)
	}
	_ = w.Close()
	_ = w.Close()
	server, _ := pair(t)
	if _, err := w.Add(server, func() {}); err != hangup.ErrClosed {
		t.Fatalf("Add after Close: got %v, want ErrClosed", err)
	}
}

// TestFailedWaitsAreRetried: a failing epoll wait is counted and retried;
// hang-up detection keeps working afterwards instead of stopping for good.
func TestFailedWaitsAreRetried(t *testing.T) {
	restore := hangup.FailWaits(3)
	defer restore()
	w, err := hangup.New()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	deadline := time.Now().Add(10 * time.Second)
	for w.Errors() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("Errors: %d after 10s, want 3", w.Errors())
		}
		time.Sleep(5 * time.Millisecond)
	}
	server, client := pair(t)
	gone := make(chan struct{})
	if _, err := w.Add(server, func() { close(gone) }); err != nil {
		t.Fatal(err)
	}
	_ = client.Close()
	select {
	case <-gone:
	case <-time.After(10 * time.Second):
		t.Fatal("hang-up not reported after failed waits")
	}
}

// TestRemoveAfterClose: removing a registration after the watcher is closed
// does nothing (the closed epoll descriptor's number may belong to another
// file by then).
func TestRemoveAfterClose(t *testing.T) {
	w, err := hangup.New()
	if err != nil {
		t.Fatal(err)
	}
	server, _ := pair(t)
	reg, err := w.Add(server, func() {})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w.Remove(reg) // must not panic nor touch a descriptor
	if _, err := w.Add(server, func() {}); !errors.Is(err, hangup.ErrClosed) {
		t.Fatalf("Add after Close: %v, want ErrClosed", err)
	}
}
