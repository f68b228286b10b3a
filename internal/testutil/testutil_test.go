package testutil_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/testutil"
)

// recorder is a testing.TB whose Fatalf records the failure and ends the
// goroutine, as the real one does.
type recorder struct {
	testing.TB
	failed string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
	panic(r)
}

// run calls f with a recorder and returns what it failed with, "" if
// nothing.
func run(f func(tb testing.TB)) string {
	r := &recorder{}
	func() {
		defer func() {
			if v := recover(); v != nil && v != r {
				panic(v)
			}
		}()
		f(r)
	}()
	return r.failed
}

func TestEventually(t *testing.T) {
	start := time.Now()
	if msg := run(func(tb testing.TB) {
		testutil.Eventually(tb, time.Minute, "soon", func() bool { return time.Since(start) > 20*time.Millisecond })
	}); msg != "" {
		t.Fatalf("a condition that comes true failed: %s", msg)
	}
	if msg := run(func(tb testing.TB) {
		testutil.Eventually(tb, 30*time.Millisecond, "never", func() bool { return false })
	}); !strings.Contains(msg, "never: not true within 30ms") {
		t.Fatalf("a condition that never holds: %q", msg)
	}
}

func TestPoll(t *testing.T) {
	n := 0
	if msg := run(func(tb testing.TB) {
		testutil.Poll(tb, time.Minute, func() error {
			if n++; n < 3 {
				return errors.New("not yet")
			}
			return nil
		})
	}); msg != "" || n != 3 {
		t.Fatalf("a check that passes the third time: %q after %d calls", msg, n)
	}
	if msg := run(func(tb testing.TB) {
		testutil.Poll(tb, 30*time.Millisecond, func() error { return errors.New("still down") })
	}); !strings.Contains(msg, "still down") {
		t.Fatalf("a check that never passes: %q", msg)
	}
}

func TestSyncBuffer(t *testing.T) {
	var b testutil.SyncBuffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				_, _ = b.Write([]byte("x"))
				_ = b.String()
			}
		})
	}
	wg.Wait()
	if n := len(b.String()); n != 800 {
		t.Fatalf("%d bytes, want 800", n)
	}
}
