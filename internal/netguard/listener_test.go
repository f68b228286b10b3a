package netguard_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/netguard"
)

// wantDelays is the back-off after n consecutive failures: 5 ms doubling,
// capped at 1 s.
func wantDelays(n int) []time.Duration {
	ds := make([]time.Duration, 0, n)
	d := netguard.MinDelay
	for range n {
		ds = append(ds, d)
		d = min(2*d, netguard.MaxDelay)
	}
	return ds
}

func TestAcceptRetriesTemporaryErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"EMFILE", acceptErr(syscall.EMFILE)},
		{"ENFILE", acceptErr(syscall.ENFILE)},
		{"ENOBUFS", acceptErr(syscall.ENOBUFS)},
		{"ENOMEM", acceptErr(syscall.ENOMEM)},
		{"ECONNABORTED", acceptErr(syscall.ECONNABORTED)},
		{"bare errno", syscall.EMFILE},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				const failures = 12
				script := make([]result, 0, failures+1)
				for range failures {
					script = append(script, result{err: tc.err})
				}
				want := &fakeConn{}
				script = append(script, result{conn: want})
				var got []retry
				l := netguard.NewListener(newScripted(script...), netguard.Options{
					OnRetry: func(err error, delay time.Duration) { got = append(got, retry{err, delay, time.Now()}) },
				})
				defer l.Close()
				start := time.Now()
				c, err := l.Accept()
				if err != nil || c != want {
					t.Fatalf("Accept() = %v, %v; want the scripted connection", c, err)
				}
				if n := l.Retries(); n != failures {
					t.Errorf("Retries() = %d, want %d", n, failures)
				}
				delays := wantDelays(failures)
				if len(got) != failures {
					t.Fatalf("OnRetry called %d times, want %d", len(got), failures)
				}
				// Each retry waits its delay, and no longer: the clock is
				// synctest's, so the sums are exact.
				at := start
				for i, r := range got {
					if r.delay != delays[i] || r.err != tc.err || !r.at.Equal(at) {
						t.Errorf("retry %d: %v after %v, at +%v; want %v after %v at +%v",
							i, r.err, r.delay, r.at.Sub(start), tc.err, delays[i], at.Sub(start))
					}
					at = at.Add(delays[i])
				}
				if elapsed := time.Since(start); elapsed != at.Sub(start) {
					t.Errorf("Accept took %v, want %v", elapsed, at.Sub(start))
				}
			})
		})
	}
}

func TestAcceptReturnsOtherErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"EINVAL", acceptErr(syscall.EINVAL)},
		{"plain error", errBoom},
		{"closed", &net.OpError{Op: "accept", Net: "tcp", Err: net.ErrClosed}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			called := false
			l := netguard.NewListener(newScripted(result{err: tc.err}), netguard.Options{
				OnRetry: func(error, time.Duration) { called = true },
			})
			defer l.Close()
			if c, err := l.Accept(); c != nil || err != tc.err {
				t.Errorf("Accept() = %v, %v; want nil, %v", c, err, tc.err)
			}
			if called || l.Retries() != 0 {
				t.Errorf("a permanent error was retried (OnRetry called: %v, Retries %d)", called, l.Retries())
			}
		})
	}
}

func TestBackoffStartsAgainAfterSuccess(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		emfile := acceptErr(syscall.EMFILE)
		var delays []time.Duration
		l := netguard.NewListener(newScripted(
			result{err: emfile}, result{err: emfile}, result{conn: &fakeConn{}},
			result{err: emfile}, result{conn: &fakeConn{}},
		), netguard.Options{OnRetry: func(_ error, d time.Duration) { delays = append(delays, d) }})
		defer l.Close()
		for range 2 {
			if _, err := l.Accept(); err != nil {
				t.Fatal(err)
			}
		}
		want := []time.Duration{5 * time.Millisecond, 10 * time.Millisecond, 5 * time.Millisecond}
		if !equalDurations(delays, want) {
			t.Errorf("delays %v, want %v", delays, want)
		}
	})
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestCloseWakesBackoff closes the listener while Accept waits a full
// second before its next retry: Accept returns at once, with an error that
// fasthttp takes for the normal end of Serve.
func TestCloseWakesBackoff(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var last retry
		l := netguard.NewListener(newForever(acceptErr(syscall.EMFILE)), netguard.Options{
			OnRetry: func(err error, d time.Duration) { last = retry{err, d, time.Now()} },
		})
		type accepted struct {
			err error
			at  time.Time
		}
		done := make(chan accepted, 1)
		go func() {
			_, err := l.Accept()
			done <- accepted{err, time.Now()}
		}()
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if last.delay != netguard.MaxDelay {
			t.Fatalf("after 5 s the delay is %v, want %v", last.delay, netguard.MaxDelay)
		}
		closedAt := time.Now()
		if closedAt.Sub(last.at) >= netguard.MaxDelay {
			t.Fatalf("not closing during a back-off: last retry at %v, now %v", last.at, closedAt)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		got := <-done
		if !got.at.Equal(closedAt) {
			t.Errorf("Accept returned %v after Close, want at once", got.at.Sub(closedAt))
		}
		if !errors.Is(got.err, net.ErrClosed) || !strings.Contains(got.err.Error(), "use of closed network connection") {
			t.Errorf("Accept() error = %v, want one wrapping net.ErrClosed", got.err)
		}
		if err := l.Close(); err == nil {
			t.Error("second Close returned nil, want the wrapped listener's error")
		}
		if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept after Close: %v, want net.ErrClosed", err)
		}
	})
}

// TestBuiltinReportIsRateLimited lets Accept fail for 10 s without
// OnRetry: the Listener logs the first failure at once, then at most one
// line per second, and the lines account for every failure.
func TestBuiltinReportIsRateLimited(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var buf bytes.Buffer
		log := slog.New(slog.NewJSONHandler(&buf, nil))
		l := netguard.NewListener(newForever(acceptErr(syscall.EMFILE)), netguard.Options{Logger: log})
		done := make(chan error, 1)
		start := time.Now()
		go func() {
			_, err := l.Accept()
			done <- err
		}()
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		_ = <-done

		type line struct {
			Time        time.Time `json:"time"`
			Level       string    `json:"level"`
			Msg         string    `json:"msg"`
			Err         string    `json:"err"`
			Errors      uint64    `json:"errors"`
			ErrorsTotal uint64    `json:"errors_total"`
		}
		var lines []line
		dec := json.NewDecoder(&buf)
		for dec.More() {
			var ln line
			if err := dec.Decode(&ln); err != nil {
				t.Fatal(err)
			}
			lines = append(lines, ln)
		}
		if len(lines) < 9 || len(lines) > 11 {
			t.Fatalf("%d log lines in 10 s, want about one per second:\n%v", len(lines), lines)
		}
		if !lines[0].Time.Equal(start) || lines[0].Errors != 1 {
			t.Errorf("first line %+v, want the first failure reported at once", lines[0])
		}
		var sum uint64
		for i, ln := range lines {
			if ln.Level != "WARN" || ln.Msg != "netguard: accept failed, retrying" || !strings.Contains(ln.Err, "too many open files") {
				t.Errorf("line %d: %+v", i, ln)
			}
			if i > 0 && ln.Time.Sub(lines[i-1].Time) < time.Second {
				t.Errorf("lines %d and %d are %v apart, want at least 1 s", i-1, i, ln.Time.Sub(lines[i-1].Time))
			}
			sum += ln.Errors
			if ln.ErrorsTotal != sum {
				t.Errorf("line %d: errors_total %d, but the lines so far count %d", i, ln.ErrorsTotal, sum)
			}
		}
		if total := l.Retries(); sum > total || total-sum > 1 {
			t.Errorf("the lines count %d failures, Retries says %d", sum, total)
		}
	})
}
