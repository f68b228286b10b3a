// Package testutil is what the module's tests share: waiting for a
// condition, the goroutines that outlive a stopped fasthttp server, and a
// log destination safe for concurrent use. Only tests import it.
package testutil

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Wait bounds the waits of tests for something that should happen
// promptly. It is long: the machines that run the tests are often busy, and
// a wait that passes costs only the time it took.
const Wait = 15 * time.Second

// Eventually polls cond until it holds, failing tb after within.
func Eventually(tb testing.TB, within time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("%s: not true within %v", what, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Poll calls check until it returns nil, failing tb with check's last error
// after within. It polls often in the first second, then every 50 ms.
func Poll(tb testing.TB, within time.Duration, check func() error) {
	tb.Helper()
	start := time.Now()
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Since(start) > within {
			tb.Fatalf("still failing after %v: %v", within, err)
		}
		if time.Since(start) < time.Second {
			time.Sleep(10 * time.Millisecond)
		} else {
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// IgnoreFasthttp are the goroutines of fasthttp's that goleak must not
// count: the worker pool's janitor notices a server's Stop only after its
// idle sleep (10 s) and holds no connection; the clock of Date headers is
// started once per process.
var IgnoreFasthttp = []goleak.Option{
	goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"),
	goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
}

// VerifyTestMain runs a package's tests, then fails if a goroutine of
// theirs is left, but fasthttp's (IgnoreFasthttp) and those extra ignores.
func VerifyTestMain(m *testing.M, extra ...goleak.Option) {
	goleak.VerifyTestMain(m, append(IgnoreFasthttp[:len(IgnoreFasthttp):len(IgnoreFasthttp)], extra...)...)
}

// SyncBuffer is a bytes.Buffer safe for the concurrent writes of a logger
// and the reads of a test.
type SyncBuffer struct {
	buf bytes.Buffer
	mu  sync.Mutex
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
