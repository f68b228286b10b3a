package server_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/server"
)

// maxAge is the shortest maximum stream age the service accepts; the tests
// use it to stay fast. A stream ends between 80% and 100% of it; late is
// bounded generously (a loaded machine, -race), early is not bounded at all.
const (
	maxAge     = time.Second
	maxAgeLate = 2 * time.Second
)

// TestGreetingRetryHint: every stream starts with the greeting and a retry
// hint of Retry plus up to 100% jitter, with each streamer.
func TestGreetingRetryHint(t *testing.T) {
	t.Parallel()
	const retry = 1500 * time.Millisecond
	for _, streamer := range streamers {
		t.Run(string(streamer), func(t *testing.T) {
			t.Parallel()
			ts := start(t, func(c *server.Config) {
				c.Retry = retry
				c.Streamer = streamer
			})
			hints := make(map[int64]bool)
			for range 20 {
				s := ts.open(t, "")
				hint := s.greeting(t)
				if hint < retry.Milliseconds() || hint > 2*retry.Milliseconds() {
					t.Errorf("retry hint %d ms, want within [%d, %d]", hint, retry.Milliseconds(), 2*retry.Milliseconds())
				}
				hints[hint] = true
				s.close()
			}
			if len(hints) < 2 {
				t.Errorf("20 streams all got the retry hint %v: no jitter", hints)
			}
		})
	}
}

// drainStream reads a stream until it ends, calling fn with every block, and
// returns the last block and when the end was seen. The stream must end
// cleanly on a complete block.
func drainStream(tb testing.TB, s *sseStream, fn func(block)) (last block, ended time.Time) {
	tb.Helper()
	timeout := time.After(waitFor)
	for {
		select {
		case b := <-s.blocks:
			fn(b)
			last = b
		case <-s.done:
			ended = time.Now()
			for _, b := range s.waitEnd(tb) {
				fn(b)
				last = b
			}
			return last, ended
		case <-timeout:
			tb.Fatalf("stream did not end within %v", waitFor)
		}
	}
}

// checkAgeEnd checks how a stream ended at its maximum age: after at least
// 80% of it, not much later than all of it, on a retry hint within
// [Retry, 2*Retry].
func checkAgeEnd(tb testing.TB, s *sseStream, last block, ended time.Time, retry time.Duration) time.Duration {
	tb.Helper()
	age := ended.Sub(s.opened)
	if age < maxAge*8/10 {
		tb.Errorf("stream ended after %v, before 80%% of its maximum age %v", age, maxAge)
	}
	if age > maxAge+maxAgeLate {
		tb.Errorf("stream ended after %v, far past its maximum age %v", age, maxAge)
	}
	if last.isEvent() || len(last.comments) > 0 || last.retry < retry.Milliseconds() || last.retry > 2*retry.Milliseconds() {
		tb.Errorf("stream ended on %q, want a retry hint within [%v, %v]", last.raw, retry, 2*retry)
	}
	return age
}

// TestMaxStreamAge: idle streams end cleanly at a random point between 80%
// and 100% of the maximum age, on a retry hint, with each streamer; the
// heartbeat goes on until then.
func TestMaxStreamAge(t *testing.T) {
	t.Parallel()
	const retry = time.Second
	for _, streamer := range streamers {
		t.Run(string(streamer), func(t *testing.T) {
			t.Parallel()
			ts := start(t, func(c *server.Config) {
				c.MaxStreamAge = maxAge
				c.Retry = retry
				c.Heartbeat = 300 * time.Millisecond
				c.Streamer = streamer
			})
			const streams = 6
			ss := make([]*sseStream, streams)
			for i := range ss {
				ss[i] = ts.open(t, "")
			}
			ages := make([]time.Duration, 0, len(ss))
			for _, s := range ss {
				s.greeting(t)
				pings := 0
				last, ended := drainStream(t, s, func(b block) {
					if len(b.comments) == 1 && b.comments[0] == "ping" {
						pings++
					}
				})
				ages = append(ages, checkAgeEnd(t, s, last, ended, retry))
				if pings < 2 {
					t.Errorf("%d heartbeats before the end, want at least 2", pings)
				}
			}
			t.Logf("stream ages at their end: %v", ages)
			eventually(t, "streams released", func() bool { return ts.Listeners() == 0 })
		})
	}
}

// TestMaxStreamAgeEndsBusyStreams: a stream ends at its maximum age even
// when events never stop coming, with each streamer.
func TestMaxStreamAgeEndsBusyStreams(t *testing.T) {
	t.Parallel()
	const retry = time.Second
	for _, streamer := range streamers {
		t.Run(string(streamer), func(t *testing.T) {
			t.Parallel()
			ts := start(t, func(c *server.Config) {
				c.MaxStreamAge = maxAge
				c.Retry = retry
				c.Streamer = streamer
			})
			s := ts.open(t, "")
			s.greeting(t)
			// Producers keep the stream busy until it ends, or for long
			// past its age.
			var stop atomic.Bool
			var wg sync.WaitGroup
			defer wg.Wait()
			defer stop.Store(true)
			batch := strings.Repeat(`{"busy":true}`+"\n", 200)
			for range 2 {
				wg.Go(func() {
					for deadline := time.Now().Add(2 * (maxAge + maxAgeLate)); !stop.Load() && time.Now().Before(deadline); {
						if r := ts.postTo(t, "", ndjson, batch); r.status != http.StatusOK {
							t.Errorf("batch: %d %s", r.status, r.body)
							return
						}
					}
				})
			}
			events, gaps := 0, 0
			last, ended := drainStream(t, s, func(b block) {
				switch {
				case b.isGap():
					gaps++
				case b.isEvent():
					events++
				}
			})
			stop.Store(true)
			age := checkAgeEnd(t, s, last, ended, retry)
			t.Logf("busy stream ended after %v, %d events, %d gaps", age, events, gaps)
		})
	}
}

// TestMaxStreamAgeResumeLosesNothing: a listener whose streams end at their
// maximum age and that reconnects each time with the id of the last event it
// read receives, over its connections, every event once, in order, with no
// gap, while a producer posts throughout.
func TestMaxStreamAgeResumeLosesNothing(t *testing.T) {
	t.Parallel()
	const retry = time.Second
	ts := start(t, func(c *server.Config) {
		c.MaxStreamAge = maxAge
		c.Retry = retry
		c.Heartbeat = time.Hour
	})
	s := ts.open(t, "")
	s.greeting(t)
	// Post for long enough that the listener's streams end at least twice.
	begin := time.Now()
	var posted atomic.Int64
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		for n := 0; ; n++ {
			if n > 50 && time.Since(begin) > 2*maxAge+maxAge/2 {
				posted.Store(int64(n))
				return
			}
			if r := ts.postTo(t, "", "application/json", fmt.Sprintf(`{"n":%d}`, n)); r.status != http.StatusOK {
				t.Errorf("POST: %d %s", r.status, r.body)
				posted.Store(-1)
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
	})
	next, ends := 0, 0
	lastID := ""
	read := func(b block) {
		switch {
		case b.isGap():
			t.Fatalf("after event %d: gap %s", next-1, b.data)
		case b.isEvent():
			if n := eventN(t, b); n != next {
				t.Fatalf("stream %d: got event %d, want %d (a duplicate or a loss)", ends+1, n, next)
			}
			next++
			lastID = b.id
		}
	}
	for {
		if p := posted.Load(); p != 0 && next == int(p) {
			break
		}
		if p := posted.Load(); p < 0 {
			t.FailNow()
		}
		last, ended := drainStream(t, s, read)
		checkAgeEnd(t, s, last, ended, retry)
		ends++
		if lastID == "" {
			s = ts.open(t, "")
		} else {
			s = ts.open(t, "", "Last-Event-ID", lastID)
		}
		s.greeting(t)
	}
	if ends < 2 {
		t.Fatalf("only %d streams ended at their age: the test tested little", ends)
	}
	t.Logf("%d events over %d streams", next, ends+1)
}
