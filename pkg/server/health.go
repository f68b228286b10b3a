package server

import (
	"fmt"
	"runtime"
	"time"

	json "github.com/goccy/go-json"
	"github.com/valyala/fasthttp"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/natsbridge"
)

// health is the body of GET /health. The first group of fields, with their
// names and string formats, is the original service's; the rest is new.
type health struct {
	Message       string `json:"message"`
	Alloc         string `json:"alloc"`
	LiveObjects   string `json:"live_objects"`
	NumGC         string `json:"num_gc"`
	NumGoroutines string `json:"num_goroutines"`
	PauseTotalNs  string `json:"pause_total_ns"`
	Sys           string `json:"sys"`
	TotalAlloc    string `json:"total_alloc"`
	Timestamp     int64  `json:"timestamp"`

	Status          string  `json:"status"`
	Version         string  `json:"version"`
	UptimeSeconds   float64 `json:"uptime_seconds"`
	Listeners       int64   `json:"listeners"`
	MaxListeners    int     `json:"max_listeners"`
	EventsAccepted  uint64  `json:"events_accepted"`
	EventsRejected  uint64  `json:"events_rejected"`
	EventsMissed    uint64  `json:"events_missed"`
	ListenersTotal  uint64  `json:"listeners_total"`
	ListenersCut    uint64  `json:"listeners_cut"`
	TurnedAway      uint64  `json:"listeners_turned_away"`
	FramesDelivered uint64  `json:"frames_delivered"`
	Topics          int     `json:"topics"`
	Buffer          int     `json:"buffer"`
	Reason          string  `json:"reason,omitempty"` // why the status is degraded

	Rejected     map[string]uint64 `json:"events_rejected_by_reason"`
	TurnedAwayBy map[string]uint64 `json:"listeners_turned_away_by_reason"`
	Ended        map[string]uint64 `json:"listeners_ended_by_reason"`
}

// handleHealth is GET /health. It is not on the hot path: it reads the
// runtime's memory statistics, which briefly stops the world.
func (s *Server) handleHealth(ctx *fasthttp.RequestCtx) {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	const mib = 1 << 20
	st := s.Stats()
	h := health{
		Message:       "PONG",
		Timestamp:     time.Now().UnixMilli(),
		Alloc:         fmt.Sprintf("%d MiB", m.Alloc/mib),
		LiveObjects:   fmt.Sprint(m.Mallocs - m.Frees),
		NumGC:         fmt.Sprint(m.NumGC),
		NumGoroutines: fmt.Sprint(runtime.NumGoroutine()),
		PauseTotalNs:  fmt.Sprint(m.PauseTotalNs),
		Sys:           fmt.Sprintf("%d MiB", m.Sys/mib),
		TotalAlloc:    fmt.Sprintf("%d MiB", m.TotalAlloc/mib),

		Status:          s.status(),
		Reason:          s.sharedProblem(),
		Version:         s.cfg.Version,
		UptimeSeconds:   time.Since(s.started).Round(time.Millisecond).Seconds(),
		Listeners:       st.Listeners,
		MaxListeners:    st.MaxListeners,
		EventsAccepted:  st.EventsAccepted,
		EventsRejected:  st.RejectedTotal,
		EventsMissed:    st.FramesMissed,
		ListenersTotal:  st.ListenersTotal,
		ListenersCut:    st.Ended[EndSlow] + st.Ended[EndLagged],
		TurnedAway:      st.TurnedAwayTotal,
		FramesDelivered: st.FramesDelivered,
		Topics:          st.Topics,
		Buffer:          st.Buffer,
		Rejected:        make(map[string]uint64, numRejectReasons),
		TurnedAwayBy:    make(map[string]uint64, numTurnAwayReasons),
		Ended:           make(map[string]uint64, numEndReasons),
	}
	for i, n := range st.EventsRejected {
		h.Rejected[RejectReason(i).String()] = n
	}
	for i, n := range st.TurnedAway {
		h.TurnedAwayBy[TurnAwayReason(i).String()] = n
	}
	for i, n := range st.Ended {
		h.Ended[EndReason(i).String()] = n
	}
	writeJSON(ctx, fasthttp.StatusOK, h)
}

// status is the service's state in one word: "degraded" when events cannot
// be shared with the other instances, or the instance does not consume them.
func (s *Server) status() string {
	switch s.state.Load() {
	case stateStarting:
		return "starting"
	case stateServing:
		if s.sharedProblem() != "" {
			return "degraded"
		}
		return "ok"
	}
	return "shutting_down"
}

// sharedProblem says why the instance cannot share events with the other
// instances now (it cannot publish: see cannotPublish), or does not consume
// them (its consumer is rejoining the stream: its listeners get the events
// late, none is lost); "" if neither (or there is no bridge).
func (s *Server) sharedProblem() string {
	if s.bridge == nil {
		return ""
	}
	st := s.bridge.Status()
	if reason := publishProblem(st); reason != "" {
		return reason
	}
	if st.State == natsbridge.StateReady {
		return ""
	}
	if st.Reason != "" {
		return "nats consumer " + st.State.String() + ": " + st.Reason
	}
	return "nats consumer " + st.State.String()
}

// cannotPublish says why the instance cannot publish to the shared stream
// now (NATS unreachable, the stream without a leader or not acknowledging),
// "" if it can (or there is no bridge): what readiness means.
func (s *Server) cannotPublish() string {
	if s.bridge == nil {
		return ""
	}
	return publishProblem(s.bridge.Status())
}

func publishProblem(st natsbridge.Status) string {
	if st.Publishable {
		return ""
	}
	if st.PublishReason != "" {
		return "nats cannot publish: " + st.PublishReason
	}
	return "nats cannot publish"
}

// handleLive is GET /health/live: 200 while the process serves.
func (s *Server) handleLive(ctx *fasthttp.RequestCtx) {
	writeJSON(ctx, fasthttp.StatusOK, probe{Status: "live"})
}

// handleReady is GET /health/ready: 200 when the service can take events and
// listeners (with NATS: it can publish to the stream now), 503 with the
// reason otherwise.
func (s *Server) handleReady(ctx *fasthttp.RequestCtx) {
	if reason := s.notReady(); reason != "" {
		writeJSON(ctx, fasthttp.StatusServiceUnavailable, probe{Status: "not_ready", Reason: reason})
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, probe{Status: "ready"})
}

// probe is the body of the liveness and readiness probes.
type probe struct {
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
}

// notReady says why the service is not ready, "" if it is.
func (s *Server) notReady() string {
	switch s.state.Load() {
	case stateStarting:
		return "starting"
	case stateServing:
		return s.cannotPublish()
	}
	return "shutting down"
}

func writeJSON(ctx *fasthttp.RequestCtx, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		writeError(ctx, fasthttp.StatusInternalServerError, "encoding: "+err.Error())
		return
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(body)
}
