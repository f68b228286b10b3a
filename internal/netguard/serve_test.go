package netguard_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/netguard"
)

// flaky is a real TCP listener whose first failures Accepts fail with
// EMFILE, as when the process runs out of descriptors.
type flaky struct {
	net.Listener
	failures atomic.Int32
}

func (f *flaky) Accept() (net.Conn, error) {
	if f.failures.Add(-1) >= 0 {
		return nil, acceptErr(syscall.EMFILE)
	}
	return f.Listener.Accept()
}

func listen(t *testing.T, failures int32) *flaky {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &flaky{Listener: ln}
	f.failures.Store(failures)
	t.Cleanup(func() { _ = ln.Close() })
	return f
}

func hello(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("hello") }

// TestFasthttpStopsOnEMFILEWithoutListener shows the defect the Listener
// fixes: fasthttp's Serve ends on the first EMFILE.
func TestFasthttpStopsOnEMFILEWithoutListener(t *testing.T) {
	t.Parallel()
	ln := listen(t, 1)
	srv := &fasthttp.Server{Handler: hello, Logger: quiet{}}
	err := srv.Serve(ln)
	if !errors.Is(err, syscall.EMFILE) {
		t.Fatalf("Serve() = %v, want it to end with EMFILE", err)
	}
}

// TestFasthttpServesThroughEMFILE runs a fasthttp server on a Listener
// whose first Accepts fail: it keeps serving, and Shutdown still ends Serve
// cleanly.
func TestFasthttpServesThroughEMFILE(t *testing.T) {
	t.Parallel()
	const failures = 3
	l := netguard.NewListener(listen(t, failures), netguard.Options{OnRetry: func(error, time.Duration) {}})
	srv := &fasthttp.Server{Handler: hello, Logger: quiet{}}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()

	if body := get(t, l.Addr().String()); body != "hello" {
		t.Fatalf("GET / = %q, want hello", body)
	}
	if n := l.Retries(); n != failures {
		t.Errorf("Retries() = %d, want %d", n, failures)
	}
	if err := srv.Shutdown(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve() = %v after Shutdown, want nil", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Serve did not return after Shutdown")
	}
}

// TestCloseEndsBlockedAccept closes a real listener while Accept waits for
// a connection.
func TestCloseEndsBlockedAccept(t *testing.T) {
	t.Parallel()
	l := netguard.NewListener(listen(t, 0), netguard.Options{})
	done := make(chan error, 1)
	go func() {
		_, err := l.Accept()
		done <- err
	}()
	time.Sleep(10 * time.Millisecond) // let Accept block; the test holds without it
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept() = %v, want net.ErrClosed", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Accept did not return after Close")
	}
}

// get sends GET / on a new connection and returns the body of a 200.
func get(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 15*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	var resp fasthttp.Response
	if err := resp.Read(bufio.NewReader(c)); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode() != fasthttp.StatusOK {
		t.Fatalf("GET / = %d", resp.StatusCode())
	}
	return string(resp.Body())
}

// quiet is a fasthttp logger that drops fasthttp's own lines.
type quiet struct{}

func (quiet) Printf(string, ...any) {}
