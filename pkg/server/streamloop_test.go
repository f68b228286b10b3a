package server

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/fanout"
)

// The stream loop, where time is the subject (heartbeats, ages, gathering),
// in virtual time: testing/synctest runs each test in a bubble whose clock
// moves only when every goroutine in it is blocked, so what these tests see
// does not depend on how busy the machine is. The stream writes to a
// memSink instead of a connection.

// memSink is a stream's sink in memory: it records each flush, with its
// (virtual) time.
type memSink struct {
	mu      sync.Mutex
	pending bytes.Buffer
	flushes []flushed
	// slow, when set, is how long each flush takes (a slow listener).
	slow time.Duration
}

type flushed struct {
	at   time.Time
	data string
}

func (m *memSink) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.pending.Write(p)
}

func (m *memSink) Buffered() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.pending.Len()
}

func (m *memSink) Flush() error {
	if m.slow > 0 {
		time.Sleep(m.slow)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.pending.Len() > 0 {
		m.flushes = append(m.flushes, flushed{at: time.Now(), data: m.pending.String()})
		m.pending.Reset()
	}
	return nil
}

// snapshot returns the flushes so far.
func (m *memSink) snapshot() []flushed {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]flushed(nil), m.flushes...)
}

// text returns everything flushed.
func (m *memSink) text() string {
	var b strings.Builder
	for _, f := range m.snapshot() {
		b.WriteString(f.data)
	}
	return b.String()
}

// loopServer returns a server for the bubble's tests, with a ring of size
// frames; both are closed when the test ends.
func loopServer(t *testing.T, size int, configure func(*Config)) *Server {
	t.Helper()
	cfg := DefaultConfig()
	cfg.WriteBudget = 0
	if configure != nil {
		configure(&cfg)
	}
	ring := fanout.New(fanout.Options{Size: size})
	t.Cleanup(func() { _ = ring.Close() })
	s, err := New(&cfg, Deps{Ring: ring})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// runStream starts a stream of s on sink, admitted as a listener on topics
// (none: every topic), and returns it and a channel closed when it ends.
func runStream(t *testing.T, s *Server, sink *memSink, topics ...string) (*stream, <-chan struct{}) {
	t.Helper()
	who := listener{ip: netip.MustParseAddr("192.0.2.1")}
	if _, ok := s.admit(who); !ok {
		t.Fatal("not admitted")
	}
	st, err := s.openStream(nil, who, nil, topics, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		st.run(sink)
	}()
	return st, done
}

// publishEvery publishes an event every interval until stop is closed.
func publishEvery(s *Server, interval time.Duration, stop <-chan struct{}) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			case <-time.After(interval):
			}
			_, _ = s.ring.Publish("", fmt.Appendf(nil, "data: %d\n\n", n))
		}
	}()
	return done
}

// endsOnRetry reports whether an SSE text ends with a whole block that is a
// retry hint.
func endsOnRetry(text string) bool {
	if !strings.HasSuffix(text, "\n\n") {
		return false
	}
	blocks := strings.Split(strings.TrimSuffix(text, "\n\n"), "\n\n")
	return strings.HasPrefix(blocks[len(blocks)-1], "retry: ")
}

func TestStreamHeartbeat(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := loopServer(t, 64, func(c *Config) { c.Heartbeat = 15 * time.Second })
		var sink memSink
		start := time.Now()
		st, done := runStream(t, s, &sink)
		time.Sleep(20 * time.Second)
		synctest.Wait()
		_, _ = s.ring.Publish("", []byte("data: 1\n\n"))
		time.Sleep(40 * time.Second)
		synctest.Wait()
		st.stop(errHungUp)
		<-done
		var pings []time.Duration
		for _, f := range sink.snapshot() {
			if f.data == heartbeat {
				pings = append(pings, f.at.Sub(start))
			}
		}
		// 15 s after the greeting; then 15 s after the event (at 20 s),
		// and every 15 s after that.
		want := []time.Duration{15 * time.Second, 35 * time.Second, 50 * time.Second}
		if fmt.Sprint(pings) != fmt.Sprint(want) {
			t.Fatalf("heartbeats at %v, want %v", pings, want)
		}
		if st.end != EndGone {
			t.Fatalf("ended %v, want gone", st.end)
		}
	})
}

// TestStreamMaxAge: a stream ends at its age, between 80 % and 100 % of
// MaxStreamAge, on a retry hint: idle, busy with events all the time, or so
// slow that it never catches up (the ring laps it again and again).
func TestStreamMaxAge(t *testing.T) {
	for _, tc := range []struct {
		name     string
		interval time.Duration // between events; 0: none
		slow     time.Duration // each flush takes this long
	}{
		{"idle", 0, 0},
		{"busy", 2 * time.Millisecond, 0},
		{"never catching up", time.Millisecond, 50 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const age = 10 * time.Second
				s := loopServer(t, 16, func(c *Config) { c.MaxStreamAge = age; c.Heartbeat = time.Hour })
				stop := make(chan struct{})
				published := make(<-chan struct{})
				if tc.interval > 0 {
					published = publishEvery(s, tc.interval, stop)
				}
				sink := memSink{slow: tc.slow}
				start := time.Now()
				st, done := runStream(t, s, &sink)
				var took time.Duration
				select {
				case <-done:
					took = time.Since(start)
					close(stop)
				case <-time.After(3 * age): // virtual time: no waiting
					took = time.Since(start)
					close(stop)
					st.stop(errHungUp)
					<-done
				}
				if tc.interval > 0 {
					<-published
				}
				if st.end != EndMaxAge || took < age*4/5 || took > age+2*tc.slow {
					t.Fatalf("ended %v after %v, want max_age within [%v, %v]", st.end, took, age*4/5, age+2*tc.slow)
				}
				if text := sink.text(); !endsOnRetry(text) {
					t.Fatalf("the stream does not end on a retry hint: ...%q", text[max(0, len(text)-80):])
				}
				if tc.slow > 0 && st.sub.Missed() == 0 {
					t.Fatal("the slow stream was never lapped: the test does not test what it says")
				}
			})
		})
	}
}

// TestStreamStopWhileBusy: a stream busy with events notices at once that
// its listener hung up or that it is cut at shutdown, instead of only when
// it runs out of events.
func TestStreamStopWhileBusy(t *testing.T) {
	for _, tc := range []struct {
		cause error
		end   EndReason
		retry bool // ends on a retry hint
	}{
		{errHungUp, EndGone, false},
		{errCutAtStop, EndShutdown, true},
	} {
		t.Run(tc.end.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := loopServer(t, 64, func(c *Config) { c.Heartbeat = time.Hour })
				stop := make(chan struct{})
				published := publishEvery(s, time.Millisecond, stop)
				var sink memSink
				st, done := runStream(t, s, &sink)
				time.Sleep(time.Second)
				stopped := time.Now()
				st.stop(tc.cause)
				<-done
				if took := time.Since(stopped); took > 10*time.Millisecond || st.end != tc.end {
					t.Fatalf("ended %v, %v after the stop; want %v at once", st.end, took, tc.end)
				}
				close(stop)
				<-published
				if text := sink.text(); endsOnRetry(text) != tc.retry {
					t.Fatalf("ends on a retry hint: %v, want %v: ...%q", !tc.retry, tc.retry, text[max(0, len(text)-80):])
				}
			})
		})
	}
}

// TestStreamGathersWithBudget: events that come two at a time, 2 ms apart,
// are written one pair per write without a budget; with a fixed budget of
// 50 writes per second the busy stream gathers them into far fewer, bigger
// writes, and loses none.
func TestStreamGathersWithBudget(t *testing.T) {
	flushes := map[int]int{}
	for _, budget := range []int{0, 50} {
		synctest.Test(t, func(t *testing.T) {
			s := loopServer(t, 4096, func(c *Config) { c.WriteBudget = budget; c.Heartbeat = time.Hour })
			var sink memSink
			st, done := runStream(t, s, &sink)
			const pairs = 600
			for n := range pairs {
				time.Sleep(2 * time.Millisecond)
				res, err := s.ring.Reserve("", 2)
				if err != nil {
					t.Fatal(err)
				}
				s.ring.Commit(res, fanout.Message{Data: fmt.Appendf(nil, "data: %d\n\n", 2*n)},
					fanout.Message{Data: fmt.Appendf(nil, "data: %d\n\n", 2*n+1)})
			}
			time.Sleep(time.Second)
			synctest.Wait()
			st.stop(errHungUp)
			<-done
			if got := strings.Count(sink.text(), "data: "); got != 2*pairs {
				t.Fatalf("budget %d: %d events written, want %d", budget, got, 2*pairs)
			}
			flushes[budget] = len(sink.snapshot())
		})
	}
	t.Logf("writes for 600 pairs of events 2 ms apart: %d without a budget, %d with 50/s", flushes[0], flushes[50])
	if flushes[50]*3 > flushes[0] {
		t.Fatalf("with a budget of 50 writes/s, %d writes (%d without): want far fewer", flushes[50], flushes[0])
	}
}

// TestQuietStreamWritesAtOnce: while the budget makes busy streams gather
// for a long time, a stream that finds one event after a pause writes it at
// once.
func TestQuietStreamWritesAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const gather = time.Second
		s := loopServer(t, 4096, func(c *Config) { c.WriteBudget = 10; c.Linger = gather; c.Heartbeat = time.Hour })
		var busySink, quietSink memSink
		busy, busyDone := runStream(t, s, &busySink, "busy")
		quiet, quietDone := runStream(t, s, &quietSink, "quiet")
		stop := make(chan struct{})
		published := make(chan struct{})
		go func() { // load on the busy topic raises the gathering time
			defer close(published)
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				case <-time.After(time.Millisecond):
				}
				_, _ = s.ring.Publish("busy", fmt.Appendf(nil, "data: %d\n\n", n))
			}
		}()
		defer func() {
			close(stop)
			<-published
			busy.stop(errHungUp)
			quiet.stop(errHungUp)
			<-busyDone
			<-quietDone
		}()
		time.Sleep(2 * time.Second) // several budget windows under load
		// 10 writes/s for a stream that finds an event every millisecond:
		// it gathers for 100 ms.
		if g := s.budget.gatherTime(time.Now()); g < 50*time.Millisecond {
			t.Fatalf("gathering %v under load: the test does not test what it says", g)
		}
		for n := range 3 {
			time.Sleep(gather + 100*time.Millisecond)
			before := len(quietSink.snapshot())
			at := time.Now()
			_, _ = s.ring.Publish("quiet", fmt.Appendf(nil, "data: q%d\n\n", n))
			synctest.Wait()
			flushes := quietSink.snapshot()
			if len(flushes) != before+1 || !flushes[before].at.Equal(at) || !strings.Contains(flushes[before].data, fmt.Sprintf("q%d", n)) {
				t.Fatalf("isolated event %d: flushes %v, want it written at once (at %v)", n, flushes[before:], at)
			}
		}
	})
}

// TestCutDeadlineStands: once a stream is cut at shutdown, nothing pushes
// its write deadline out again: a write to a listener that stopped reading
// fails at the cut's deadline, not at the write timeout.
func TestCutDeadlineStands(t *testing.T) {
	t.Parallel()
	s := loopServer(t, 64, func(c *Config) { c.WriteTimeout = time.Hour })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close() // never reads
	accepted, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	c := &conn{TCPConn: accepted.(*net.TCPConn)}
	defer c.TCPConn.Close()
	st, err := s.openStream(c, listener{}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.sub.Close()
	st.cutNow()
	st.armDeadline(time.Now().Add(time.Hour)) // as the loop does before it writes
	done := make(chan error, 1)
	go func() {
		chunk := make([]byte, 1<<20)
		for {
			if _, err := c.Write(chunk); err != nil {
				done <- err
				return
			}
		}
	}()
	select {
	case err := <-done:
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("write failed with %v, want the cut's deadline", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the write to a listener that stopped reading did not fail: the cut's deadline was pushed out")
	}
}
