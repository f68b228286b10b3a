// Package baseline is a BASELINE FOR COMPARISONS ONLY: a deliberately
// conventional Server-Sent Events fan-out server, written the way such a
// service is usually first written in Go, so that the Pillarbox Event
// Dispatcher's benchmarks have a fair, reproducible point of reference. It is
// not the service and must not be used in production.
//
// The conventional design:
//   - net/http with its default server settings;
//   - POST /api/events validates the body with encoding/json (decoded into
//     map[string]any), adds "user_ip" and re-encodes it;
//   - a mutex-guarded set of listeners, each with a buffered channel
//     (capacity Options.Buffer); a broadcast does a non-blocking send to
//     every channel under the lock and drops the event for a listener whose
//     channel is full;
//   - GET /events writes the greeting comment, then "data: <json>\n\n"
//     frames: woken by an event, it writes it and every other event
//     already waiting in its channel, then flushes once (drain before
//     flush, as a competent first version does). Options.FlushEach makes
//     it flush after every frame instead: the naive variant, benchmarked
//     as a second baseline;
//   - GET /health answers {"status":"ok",...}.
//
// It speaks the same wire format as the service, so sseload can load both.
package baseline

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure the baseline server.
type Options struct {
	// Buffer is the capacity of each listener's channel (default 256).
	Buffer int
	// MaxListeners refuses new listeners with 503 beyond this number
	// (0 = unlimited).
	MaxListeners int
	// MaxBody is the largest accepted event body in bytes (default 64 KiB).
	MaxBody int64
	// Heartbeat is the interval of ": ping" comments (0 = none).
	Heartbeat time.Duration
	// FlushEach flushes after every frame instead of once per batch of
	// waiting frames.
	FlushEach bool
}

// Server is the baseline fan-out server.
type Server struct {
	opts Options

	mu        sync.Mutex
	listeners map[chan []byte]struct{}

	done      chan struct{}
	closeOnce sync.Once

	published atomic.Uint64
	dropped   atomic.Uint64
	started   time.Time
}

// New returns a baseline server.
func New(opts Options) *Server {
	if opts.Buffer <= 0 {
		opts.Buffer = 256
	}
	if opts.MaxBody <= 0 {
		opts.MaxBody = 64 << 10
	}
	return &Server{
		opts:      opts,
		listeners: map[chan []byte]struct{}{},
		done:      make(chan struct{}),
		started:   time.Now(),
	}
}

// Handler returns the HTTP handler with the three endpoints.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/api/events", s.handlePost)
	mux.HandleFunc("/events", s.handleEvents)
	mux.HandleFunc("/health", s.handleHealth)
	return mux
}

// Close ends every open event stream (so that http.Server.Shutdown can
// complete). It is safe to call more than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.done) })
}

// Listeners returns the number of connected listeners.
func (s *Server) Listeners() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.listeners)
}

// Stats returns the number of published events and of events dropped for
// listeners whose buffer was full.
func (s *Server) Stats() (published, dropped uint64) {
	return s.published.Load(), s.dropped.Load()
}

func (s *Server) handlePost(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.MaxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "cannot read body", http.StatusBadRequest)
		return
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // keep large integers (e.g. ns timestamps) exact
	var event map[string]any
	if err := dec.Decode(&event); err != nil || event == nil {
		http.Error(w, "body must be a JSON object", http.StatusBadRequest)
		return
	}
	if dec.More() {
		http.Error(w, "body must be a single JSON object", http.StatusBadRequest)
		return
	}
	event["user_ip"] = clientIP(r)
	out, err := json.Marshal(event)
	if err != nil {
		http.Error(w, "cannot encode event", http.StatusInternalServerError)
		return
	}
	frame := make([]byte, 0, len(out)+8)
	frame = append(frame, "data: "...)
	frame = append(frame, out...)
	frame = append(frame, "\n\n"...)
	s.broadcast(frame)
	w.WriteHeader(http.StatusOK)
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// broadcast offers the frame to every listener, dropping it for those whose
// channel is full.
func (s *Server) broadcast(frame []byte) {
	s.published.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	for ch := range s.listeners {
		select {
		case ch <- frame:
		default:
			s.dropped.Add(1)
		}
	}
}

func (s *Server) subscribe() (chan []byte, bool) {
	ch := make(chan []byte, s.opts.Buffer)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.opts.MaxListeners > 0 && len(s.listeners) >= s.opts.MaxListeners {
		return nil, false
	}
	s.listeners[ch] = struct{}{}
	return ch, true
}

func (s *Server) unsubscribe(ch chan []byte) {
	s.mu.Lock()
	delete(s.listeners, ch)
	s.mu.Unlock()
}

func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	ch, ok := s.subscribe()
	if !ok {
		http.Error(w, "too many listeners", http.StatusServiceUnavailable)
		return
	}
	defer s.unsubscribe(ch)

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if _, err := io.WriteString(w, ": connected\n\n"); err != nil {
		return
	}
	flusher.Flush()

	var heartbeat <-chan time.Time
	if s.opts.Heartbeat > 0 {
		t := time.NewTicker(s.opts.Heartbeat)
		defer t.Stop()
		heartbeat = t.C
	}
	ctx := r.Context()
	for {
		select {
		case frame := <-ch:
			if err := s.writeFrames(w, frame, ch); err != nil {
				return
			}
			flusher.Flush()
		case <-heartbeat:
			if _, err := io.WriteString(w, ": ping\n\n"); err != nil {
				return
			}
			flusher.Flush()
		case <-ctx.Done():
			return
		case <-s.done:
			return
		}
	}
}

// writeFrames writes frame and, unless Options.FlushEach is set, every
// frame already waiting in ch, for one flush to send them together.
func (s *Server) writeFrames(w http.ResponseWriter, frame []byte, ch chan []byte) error {
	if _, err := w.Write(frame); err != nil {
		return err
	}
	if s.opts.FlushEach {
		return nil
	}
	for {
		select {
		case frame = <-ch:
			if _, err := w.Write(frame); err != nil {
				return err
			}
		default:
			return nil
		}
	}
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	published, dropped := s.Stats()
	w.Header().Set("Content-Type", "application/json")
	impl := "baseline"
	if s.opts.FlushEach {
		impl = "baseline-flush"
	}
	body := []byte(`{"status":"ok","implementation":"` + impl + `","listeners":`)
	body = strconv.AppendInt(body, int64(s.Listeners()), 10)
	body = append(body, `,"published":`...)
	body = strconv.AppendUint(body, published, 10)
	body = append(body, `,"dropped":`...)
	body = strconv.AppendUint(body, dropped, 10)
	body = append(body, `,"uptime_s":`...)
	body = strconv.AppendInt(body, int64(time.Since(s.started).Seconds()), 10)
	body = append(body, "}\n"...)
	_, _ = w.Write(body)
}
