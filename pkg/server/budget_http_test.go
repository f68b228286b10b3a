package server_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/server"
)

// chunkCounter reads a hijacked stream's chunked body and counts its chunks
// (one per write) and its event frames.
type chunkCounter struct {
	br             *bufio.Reader
	chunks, frames int
}

func (c *chunkCounter) readUntilFrames(tb testing.TB, frames int) {
	tb.Helper()
	for c.frames < frames {
		line, err := c.br.ReadString('\n')
		if err != nil {
			tb.Fatalf("chunk size: %v", err)
		}
		size, err := strconv.ParseUint(strings.TrimSpace(line), 16, 32)
		if err != nil {
			tb.Fatalf("chunk size %q: %v", line, err)
		}
		data := make([]byte, size+2)
		if _, err := io.ReadFull(c.br, data); err != nil {
			tb.Fatal(err)
		}
		c.chunks++
		c.frames += bytes.Count(data, []byte("\ndata: "))
	}
}

// TestWriteBudgetBatchesBusyStreams: events that arrive two at a time, 2 ms
// apart, are written one pair per write without a budget; with a budget of
// 50 writes per second the busy stream gathers them into far fewer, bigger
// writes, and loses none.
//
// Pairs, not single events: a stream that finds one event at a time, spaced
// wider than the gathering time, is not busy and writes at once, whatever
// the budget (budget.go). Single events 2 ms apart are on that boundary, and
// on a loaded machine (-race, other packages' tests) the POSTs space them
// out past it.
func TestWriteBudgetBatchesBusyStreams(t *testing.T) {
	t.Parallel()
	const pairs = 600
	writes := map[int]int{}
	for _, budget := range []int{0, 50} {
		ts := start(t, func(c *server.Config) {
			c.Streamer = server.StreamHijack
			c.WriteBudget = budget
			c.Linger = 200 * time.Millisecond
			c.Heartbeat = time.Hour
		})
		conn, br, _ := rawStream(t, ts, 0)
		_ = conn.SetReadDeadline(time.Now().Add(2 * waitFor))
		counter := &chunkCounter{br: br}
		counter.readUntilFrames(t, 0)
		eventually(t, "listener registered", func() bool { return ts.Listeners() == 1 })
		chunksBefore := counter.chunks
		for n := range pairs {
			if r := ts.postTo(t, "", ndjson, fmt.Sprintf("{\"n\":%d}\n{\"n\":%d}\n", 2*n, 2*n+1)); r.status != http.StatusOK {
				t.Fatalf("pair %d: %d %s", n, r.status, r.body)
			}
			time.Sleep(2 * time.Millisecond)
		}
		counter.readUntilFrames(t, 2*pairs)
		if counter.frames != 2*pairs {
			t.Fatalf("budget %d: %d frames, want %d", budget, counter.frames, 2*pairs)
		}
		writes[budget] = counter.chunks - chunksBefore
	}
	t.Logf("writes for %d pairs of events 2 ms apart: %d without a budget, %d with 50/s", pairs, writes[0], writes[50])
	if writes[0] < pairs*3/4 {
		t.Errorf("without a budget, %d writes for %d spaced pairs: want about one each", writes[0], pairs)
	}
	if writes[50] > writes[0]/3 {
		t.Errorf("with a budget of 50 writes/s, %d writes (%d without): want far fewer", writes[50], writes[0])
	}
}

// TestIdleStreamWritesAtOnce: while the budget makes busy streams gather for
// a long time, a stream that finds one event after a pause writes it at
// once.
func TestIdleStreamWritesAtOnce(t *testing.T) {
	t.Parallel()
	const gather = time.Second
	ts := start(t, func(c *server.Config) {
		c.WriteBudget = 10
		c.Linger = gather
		c.Heartbeat = time.Hour
	})
	ts.open(t, "topic=busy") // a busy stream, so that the budget has flushes to count
	quiet := ts.open(t, "topic=quiet")
	quiet.greeting(t)
	// Load on another topic raises the gathering time.
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			req, _ := http.NewRequest(http.MethodPost, ts.url+"/api/events?topic=busy", strings.NewReader(fmt.Sprintf(`{"n":%d}`, n)))
			resp, err := ts.client.Do(req)
			if err != nil {
				return
			}
			resp.Body.Close()
			time.Sleep(time.Millisecond)
		}
	}()
	defer func() { close(stop); <-done }()
	time.Sleep(time.Second) // several budget windows under load
	for n := range 3 {
		time.Sleep(gather + 100*time.Millisecond)
		begin := time.Now()
		req, _ := http.NewRequest(http.MethodPost, ts.url+"/api/events?topic=quiet", strings.NewReader(fmt.Sprintf(`{"q":%d}`, n)))
		if r := ts.do(t, req); r.status != http.StatusOK {
			t.Fatalf("POST: %d", r.status)
		}
		ev := quiet.nextEvent(t)
		if d := time.Since(begin); d > gather/2 {
			t.Errorf("an isolated event took %v to arrive: the budget delayed an idle stream", d)
		}
		if !strings.Contains(ev.data, fmt.Sprintf(`{"q":%d,`, n)) {
			t.Fatalf("got %q", ev.data)
		}
	}
}
