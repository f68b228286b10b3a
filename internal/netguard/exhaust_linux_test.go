package netguard_test

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/testutil"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/netguard"
)

// exhaustEnv makes the test binary, run again by
// TestAcceptSurvivesDescriptorExhaustion, play the child that runs out of
// descriptors.
const exhaustEnv = "NETGUARD_TEST_EXHAUST"

// TestAcceptSurvivesDescriptorExhaustion really runs out of file
// descriptors. That changes the whole process (its limit, its descriptor
// table), so the test runs itself again as a child process and checks that
// the child passed.
//
// About limits: when a Go program starts, the runtime lifts its soft
// RLIMIT_NOFILE to the hard limit, minus one, and remembers the original,
// which os/exec restores in the processes it starts. The child therefore
// starts with the original soft limit, which its own runtime lifts again;
// it then lowers it with syscall.Setrlimit, which also tells the runtime to
// stop restoring the original for its own children (it starts none).
func TestAcceptSurvivesDescriptorExhaustion(t *testing.T) {
	if os.Getenv(exhaustEnv) != "" {
		exhaustChild(t)
		return
	}
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], //nolint:gosec // G702: the test binary runs itself again, with a test name of its own
		"-test.run=^TestAcceptSurvivesDescriptorExhaustion$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), exhaustEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestAcceptSurvivesDescriptorExhaustion") {
		t.Fatalf("child: %v\n%s", err, out)
	}
	t.Logf("child:\n%s", out)
}

// exhaustChild fills the descriptor table while connections wait in the
// listener's backlog, checks that Accept keeps retrying instead of failing,
// frees descriptors, and checks that the waiting connections are accepted.
func exhaustChild(t *testing.T) {
	const limit = 128 // low, so that filling the table is quick
	const pending = 8 // connections waiting in the backlog
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: limit, Max: hardLimit(t)}); err != nil {
		t.Fatal(err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var firstErr atomic.Pointer[error]
	l := netguard.NewListener(ln, netguard.Options{OnRetry: func(err error, _ time.Duration) {
		firstErr.CompareAndSwap(nil, &err)
	}})
	defer l.Close()

	// The clients connect before anything is accepted: the kernel
	// completes their handshakes and queues them in the backlog.
	clients := make([]net.Conn, pending)
	for i := range clients {
		if clients[i], err = net.Dial("tcp", l.Addr().String()); err != nil {
			t.Fatal(err)
		}
	}
	defer func() {
		for _, c := range clients {
			_ = c.Close()
		}
	}()

	// Fill the rest of the table.
	var fillers []*os.File
	defer func() {
		for _, f := range fillers {
			_ = f.Close()
		}
	}()
	for {
		f, err := os.Open(os.DevNull)
		if err != nil {
			if !errors.Is(err, syscall.EMFILE) {
				t.Fatalf("filling the descriptor table: %v", err)
			}
			break
		}
		fillers = append(fillers, f)
		if len(fillers) > limit {
			t.Fatalf("opened %d files under a limit of %d", len(fillers), limit)
		}
	}
	t.Logf("table full: %d files opened after %d connections", len(fillers), pending)

	// Accept now fails with EMFILE, again and again, and must not return.
	var (
		mu       sync.Mutex
		accepted []net.Conn
		acceptEr error
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			mu.Lock()
			if err != nil {
				acceptEr = err
				mu.Unlock()
				return
			}
			accepted = append(accepted, c)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range accepted {
			_ = c.Close()
		}
	}()
	eventually(t, "Accept to retry 5 times", func() bool { return l.Retries() >= 5 })
	mu.Lock()
	if len(accepted) != 0 || acceptEr != nil {
		t.Fatalf("with the table full, Accept returned %d connections and error %v", len(accepted), acceptEr)
	}
	mu.Unlock()
	if p := firstErr.Load(); p == nil || !errors.Is(*p, syscall.EMFILE) {
		t.Fatalf("the retried error is %v, want EMFILE", p)
	}
	t.Logf("Accept retried %d times with the table full: %v", l.Retries(), *firstErr.Load())

	// Free descriptors: the waiting connections are accepted.
	for _, f := range fillers {
		_ = f.Close()
	}
	fillers = nil
	eventually(t, "the waiting connections to be accepted", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(accepted) == pending
	})

	// They are the clients' connections: each client's byte arrives.
	for i, c := range clients {
		if _, err := c.Write([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	got := make([]int, 0, len(accepted))
	for _, c := range accepted {
		_ = c.SetReadDeadline(time.Now().Add(15 * time.Second))
		b := make([]byte, 1)
		if _, err := c.Read(b); err != nil {
			t.Fatal(err)
		}
		got = append(got, int(b[0]))
	}
	mu.Unlock()
	slices.Sort(got)
	for i, b := range got {
		if b != i {
			t.Fatalf("accepted connections carried bytes %v, want 0 to %d", got, pending-1)
		}
	}

	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	<-done
	if !errors.Is(acceptEr, net.ErrClosed) {
		t.Errorf("Accept after Close: %v, want net.ErrClosed", acceptEr)
	}
}

// eventually polls cond until it holds, failing after testutil.Wait.
func eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	testutil.Eventually(tb, testutil.Wait, what, cond)
}

func hardLimit(t *testing.T) uint64 {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	return lim.Max
}
