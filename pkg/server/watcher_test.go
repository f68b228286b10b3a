package server_test

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/server"
)

// fakeWatcher is a server.Watcher that a test makes report hang-ups.
type fakeWatcher struct {
	mu      sync.Mutex
	watched map[net.Conn]func()
	stopped int
}

func (w *fakeWatcher) Watch(conn net.Conn, onHangup func()) (func(), error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.watched[conn] = onHangup
	return func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		delete(w.watched, conn)
		w.stopped++
	}, nil
}

// hangUp reports every watched connection as gone, and returns how many.
func (w *fakeWatcher) hangUp() int {
	w.mu.Lock()
	fs := make([]func(), 0, len(w.watched))
	for _, f := range w.watched {
		fs = append(fs, f)
	}
	w.mu.Unlock()
	for _, f := range fs {
		f()
	}
	return len(fs)
}

func (w *fakeWatcher) counts() (watched, stopped int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.watched), w.stopped
}

// TestWatcher: a Watcher given in Deps watches each stream's connection; a
// hang-up it reports ends the stream at once (no heartbeat or event has to
// fail a write first), and the stream stops the watch as it ends.
func TestWatcher(t *testing.T) {
	t.Parallel()
	w := &fakeWatcher{watched: make(map[net.Conn]func())}
	cfg := server.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.Heartbeat = time.Hour
	ts := startWatched(t, &cfg, testRingOptions, testLogHandler(t), w, func() {})
	l := ts.listen(t)
	defer l.close()
	eventually(t, "the stream watched", func() bool { n, _ := w.counts(); return n == 1 })
	if n := w.hangUp(); n != 1 {
		t.Fatalf("%d connections watched, want 1", n)
	}
	eventually(t, "the stream ended by the hang-up", func() bool { return ts.Listeners() == 0 })
	eventually(t, "the watch stopped", func() bool { n, stopped := w.counts(); return n == 0 && stopped == 1 })
	if h := health(t, ts); h.Ended["gone"] != 1 {
		t.Errorf("streams ended: %v, want one gone", h.Ended)
	}
}
