// Package original is a RE-IMPLEMENTATION OF THE ORIGINAL SERVICE'S DESIGN,
// FOR BENCHMARK COMPARISON ONLY. The original Pillarbox Event Dispatcher is
// the service this repository replaces; this package lets the benchmarks
// measure it in the same run as the replacement instead of quoting old
// numbers. It was written from the behaviour contract's description of the
// original's design and faults, not from the original's code (none was
// copied). It is not the service, its faults are kept on purpose, and it
// must never be used in production.
//
// The design, as described:
//   - net/http with the default server settings (no timeouts);
//   - POST /api/events reads the whole body with io.ReadAll (no size limit),
//     decodes it with encoding/json into a map[string]any, adds "user_ip"
//     (the peer's IP address, without the port) and encodes it again with
//     json.Marshal, then broadcasts it; it answers 200 with an empty body
//     once the event has been handed to every listener;
//   - one global sync.Mutex guards a map of listeners; each listener has an
//     UNBUFFERED channel; a broadcast takes the mutex and does a blocking
//     send on every listener's channel in turn;
//   - GET /events registers the listener, sets Content-Type
//     text/event-stream, Cache-Control no-cache, Connection keep-alive and
//     Access-Control-Allow-Origin *, but flushes nothing until the first
//     event; then writes "data: <json>\n\n" with fmt.Fprintf and flushes,
//     once per event; when the request's context ends, it removes itself;
//   - GET /health answers {"message":"PONG","timestamp":<ms>, ...} with
//     memory figures from runtime.ReadMemStats, as strings.
//
// Known faults, reproduced faithfully because they are what the comparison
// measures:
//   - one listener that stops reading blocks every POST and every other
//     listener: its handler is stuck in a write, so nobody takes the event
//     from its unbuffered channel, so the broadcast waits for ever with the
//     global mutex held; new listeners cannot even register;
//   - every broadcast is serial: one channel hand-off (a goroutine switch) and
//     one flushed write per listener and per event, under the one mutex;
//   - events are re-encoded through map[string]any: keys come out sorted and
//     numbers become float64, so integers beyond 2^53 are rounded;
//   - no body size limit; no heartbeat, so idle streams cannot be told from
//     dead ones; no header is sent before the first event, so a listener
//     cannot tell that it is connected; no CORS preflight (OPTIONS is not
//     answered); no graceful shutdown: SIGTERM ends the process and its
//     streams mid-frame.
//
// Deviations from the original, where its behaviour would spoil a load test:
//   - a body of JSON null made the original panic (it assigned user_ip into
//     a nil map); the replica answers 400 instead, so a load test cannot
//     crash it;
//   - the original removed a departing listener without coordinating with a
//     broadcast in progress (racy: the description reports a possible
//     panic). The replica removes it under the mutex; so that this cannot
//     deadlock with a broadcast that holds the mutex while blocked on the
//     departing listener's channel, a goroutine drains that channel until the
//     removal is done. A departing listener therefore never blocks the
//     others; a connected one that does not read still does, as in the
//     original;
//   - requests are routed with method patterns, so a wrong method gets 405
//     (the description does not say what the original did).
package original

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"time"
)

// Server is the replica of the original service.
type Server struct {
	mu      sync.Mutex
	clients map[chan []byte]struct{}
}

// New returns a server with no listener.
func New() *Server {
	return &Server{clients: map[chan []byte]struct{}{}}
}

// Handler returns the HTTP handler with the original's three endpoints.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/events", s.handlePost)
	mux.HandleFunc("GET /events", s.handleEvents)
	mux.HandleFunc("GET /health", s.handleHealth)
	return mux
}

// Listeners returns the number of registered listeners. It takes the global
// mutex, so it waits while a broadcast is blocked (the original had no such
// accessor; tests use it).
func (s *Server) Listeners() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.clients)
}

func (s *Server) handlePost(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body) // no size limit, as in the original
	if err != nil {
		http.Error(w, "cannot read body", http.StatusBadRequest)
		return
	}
	var event map[string]any
	if err := json.Unmarshal(body, &event); err != nil {
		http.Error(w, "invalid JSON", http.StatusBadRequest)
		return
	}
	if event == nil {
		// Deviation: the original panicked here (assignment to a nil map).
		http.Error(w, "invalid JSON", http.StatusBadRequest)
		return
	}
	event["user_ip"] = peerIP(r)
	out, err := json.Marshal(event)
	if err != nil {
		http.Error(w, "cannot encode event", http.StatusInternalServerError)
		return
	}
	s.broadcast(out)
	w.WriteHeader(http.StatusOK)
}

// peerIP is the connection's remote address without its port.
func peerIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// broadcast hands msg to every listener in turn, holding the global mutex
// and blocking on each unbuffered channel until that listener takes it.
func (s *Server) broadcast(msg []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ch := range s.clients {
		ch <- msg
	}
}

func (s *Server) add(ch chan []byte) {
	s.mu.Lock()
	s.clients[ch] = struct{}{}
	s.mu.Unlock()
}

// remove unregisters ch under the mutex. A broadcast may hold the mutex
// while blocked sending on ch, so ch is drained by a goroutine until the
// removal is done (the replica's deviation from the racy original).
func (s *Server) remove(ch chan []byte) {
	stop := make(chan struct{})
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		for {
			select {
			case <-ch:
			case <-stop:
				return
			}
		}
	}()
	s.mu.Lock()
	delete(s.clients, ch)
	s.mu.Unlock()
	// Once removed under the mutex, no broadcast can be sending on ch.
	close(stop)
	<-drained
}

func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	ch := make(chan []byte) // unbuffered, as in the original
	s.add(ch)

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	h.Set("Access-Control-Allow-Origin", "*")
	// Nothing is flushed here: the headers leave with the first event.

	ctx := r.Context()
	for {
		select {
		case msg := <-ch:
			// Write errors are ignored, as in the original; a failed write
			// cancels the request's context, which ends the loop.
			_, _ = fmt.Fprintf(w, "data: %s\n\n", msg)
			flusher.Flush()
		case <-ctx.Done():
			s.remove(ch)
			return
		}
	}
}

func (s *Server) handleHealth(w http.ResponseWriter, _ *http.Request) {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	resp := map[string]any{
		"message":        "PONG",
		"timestamp":      time.Now().UnixMilli(),
		"alloc":          mib(m.Alloc),
		"total_alloc":    mib(m.TotalAlloc),
		"sys":            mib(m.Sys),
		"num_gc":         strconv.FormatUint(uint64(m.NumGC), 10),
		"live_objects":   strconv.FormatUint(m.Mallocs-m.Frees, 10),
		"num_goroutines": strconv.Itoa(runtime.NumGoroutine()),
		"pause_total_ns": strconv.FormatUint(m.PauseTotalNs, 10),
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}

func mib(b uint64) string { return strconv.FormatUint(b/1024/1024, 10) + " MiB" }
