package app_test

// Listeners: GET /events streams read as a browser does, and checks of what
// they received.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/sseclient"
)

// listener is one GET /events stream, read in a goroutine of its own and
// recorded: every event (gaps included), the heartbeats, the raw bytes.
type listener struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when the stream ended
	name   string
	mu     sync.Mutex
	msgs   []sseclient.Message // events, in order; comments are not kept
	raw    bytes.Buffer
	pings  int
	err    error // how the stream ended: io.EOF for a clean end
}

// listen opens a stream of every topic on the instance, resuming after
// lastID unless it is empty, and returns once the greeting arrived (the
// listener is registered). The stream is closed at t's cleanup.
func (in *instance) listen(t *testing.T, lastID string) *listener {
	t.Helper()
	return in.listenOn(t, "/events", lastID)
}

// listenOn is listen with the request's path and query.
func (in *instance) listenOn(t *testing.T, path, lastID string) *listener {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+in.addr+path, nil)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := in.client.Do(req) //nolint:bodyclose // closed by the reading goroutine, or on every early return
	if err != nil {
		cancel()
		t.Fatalf("GET /events on %s: %v", in.name, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		cancel()
		t.Fatalf("GET /events on %s: %d", in.name, resp.StatusCode)
	}
	l := &listener{cancel: cancel, done: make(chan struct{}), name: in.name}
	body := bufio.NewReader(resp.Body)
	if line, err := body.ReadString('\n'); err != nil || line != ": connected\n" {
		resp.Body.Close()
		cancel()
		t.Fatalf("greeting on %s: %q %v", in.name, line, err)
	}
	go func() {
		defer close(l.done)
		defer resp.Body.Close()
		r := sseclient.NewReader(io.TeeReader(body, lockedWriter{l}))
		for {
			m, err := r.Next()
			l.mu.Lock()
			switch {
			case err != nil:
				l.err = err
			case m.Comment:
				l.pings++
			default:
				l.msgs = append(l.msgs, m)
			}
			l.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(l.close)
	return l
}

// lockedWriter appends the stream's raw bytes to the listener's record.
type lockedWriter struct{ l *listener }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.l.mu.Lock()
	defer w.l.mu.Unlock()
	return w.l.raw.Write(p)
}

// close ends the stream from the client's side and waits for the reader.
func (l *listener) close() {
	l.cancel()
	<-l.done
}

// messages returns a copy of what was received so far.
func (l *listener) messages() []sseclient.Message {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]sseclient.Message(nil), l.msgs...)
}

// rawText returns the bytes received so far.
func (l *listener) rawText() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.raw.String()
}

// heartbeats returns how many comment lines came after the greeting.
func (l *listener) heartbeats() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.pings
}

// waitCount waits until the listener received at least n events (gaps
// included) and returns them all.
func (l *listener) waitCount(t testing.TB, n int) []sseclient.Message {
	t.Helper()
	var got []sseclient.Message
	poll(t, func() error {
		if got = l.messages(); len(got) < n {
			return fmt.Errorf("listener on %s: %d events, want %d", l.name, len(got), n)
		}
		return nil
	})
	return got
}

// waitData waits until the listener received the payloads want, then checks
// that it received exactly want, in that order, with no gap event, and returns
// the events.
func (l *listener) waitData(t testing.TB, want []string) []sseclient.Message {
	t.Helper()
	got := l.waitCount(t, len(want))
	checkData(t, l.name, got, want)
	return got
}

// checkData fails t unless ms are events (no gap) whose payloads are want.
func checkData(t testing.TB, who string, ms []sseclient.Message, want []string) {
	t.Helper()
	if len(ms) != len(want) {
		t.Fatalf("%s: %d events, want %d\n got: %s", who, len(ms), len(want), summary(ms))
	}
	for i, w := range want {
		if m := ms[i]; m.Type != "message" || m.Data != w {
			t.Fatalf("%s: event %d is %s %s (id %s), want %s\n got: %s", who, i, m.Type, m.Data, m.ID, w, summary(ms))
		}
	}
}

// summary describes events briefly, for failure messages.
func summary(ms []sseclient.Message) string {
	var b strings.Builder
	for i, m := range ms {
		if i == 40 {
			fmt.Fprintf(&b, " ... (%d more)", len(ms)-i)
			break
		}
		if m.Type == "message" {
			fmt.Fprintf(&b, " %s=%s", m.ID, m.Data)
		} else {
			fmt.Fprintf(&b, " [%s %s %s]", m.Type, m.ID, m.Data)
		}
	}
	return b.String()
}

// waitEnd waits until the stream ended and returns its raw bytes and how it
// ended.
func (l *listener) waitEnd(t testing.TB) (string, error) {
	t.Helper()
	select {
	case <-l.done:
	case <-time.After(wait):
		t.Fatalf("stream on %s did not end within %v", l.name, wait)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.raw.String(), l.err
}

// streamID splits an event id "s<stream>-<seq>" into the stream's part and
// the sequence, failing t for any other form.
func streamID(t testing.TB, id string) (space string, seq uint64) {
	t.Helper()
	i := strings.LastIndexByte(id, '-')
	if !strings.HasPrefix(id, "s") || i < 2 {
		t.Fatalf("id %q is not a stream id s<stream>-<seq>", id)
	}
	seq, err := strconv.ParseUint(id[i+1:], 10, 64)
	if err != nil {
		t.Fatalf("id %q: %v", id, err)
	}
	return id[:i], seq
}

// checkConsecutive fails t unless ms are events of one stream with
// consecutive sequences, the first being first (0: any).
func checkConsecutive(t testing.TB, who string, ms []sseclient.Message, first uint64) {
	t.Helper()
	if len(ms) == 0 {
		return
	}
	space, seq := streamID(t, ms[0].ID)
	if first != 0 && seq != first {
		t.Fatalf("%s: first id %s, want sequence %d", who, ms[0].ID, first)
	}
	for i, m := range ms[1:] {
		sp, n := streamID(t, m.ID)
		if sp != space || n != seq+uint64(i)+1 {
			t.Fatalf("%s: event %d has id %s after %s: ids not consecutive\n got: %s", who, i+1, m.ID, ms[i].ID, summary(ms))
		}
	}
}
