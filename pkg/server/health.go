package server

import (
	"fmt"
	"runtime"
	"time"

	json "github.com/goccy/go-json"
	"github.com/valyala/fasthttp"
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

	Status         string  `json:"status"`
	Version        string  `json:"version"`
	UptimeSeconds  float64 `json:"uptime_seconds"`
	Listeners      int64   `json:"listeners"`
	EventsAccepted uint64  `json:"events_accepted"`
	EventsRejected uint64  `json:"events_rejected"`
	EventsMissed   uint64  `json:"events_missed"`
	ListenersTotal uint64  `json:"listeners_total"`
	ListenersCut   uint64  `json:"listeners_cut"`
	TurnedAway     uint64  `json:"listeners_turned_away"`
	Buffer         int     `json:"buffer"`
}

// handleHealth is GET /health. It is not on the hot path: it reads the
// runtime's memory statistics, which briefly stops the world.
func (s *Server) handleHealth(ctx *fasthttp.RequestCtx) {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	const mib = 1 << 20
	status := "ok"
	if s.closing.Load() {
		status = "shutting_down"
	}
	body, err := json.Marshal(health{
		Message:       "PONG",
		Timestamp:     time.Now().UnixMilli(),
		Alloc:         fmt.Sprintf("%d MiB", m.Alloc/mib),
		LiveObjects:   fmt.Sprint(m.Mallocs - m.Frees),
		NumGC:         fmt.Sprint(m.NumGC),
		NumGoroutines: fmt.Sprint(runtime.NumGoroutine()),
		PauseTotalNs:  fmt.Sprint(m.PauseTotalNs),
		Sys:           fmt.Sprintf("%d MiB", m.Sys/mib),
		TotalAlloc:    fmt.Sprintf("%d MiB", m.TotalAlloc/mib),

		Status:         status,
		Version:        s.cfg.Version,
		UptimeSeconds:  time.Since(s.started).Round(time.Millisecond).Seconds(),
		Listeners:      s.stats.listeners.Load(),
		EventsAccepted: s.stats.accepted.Load(),
		EventsRejected: s.stats.rejected.Load(),
		EventsMissed:   s.ring.Missed(),
		ListenersTotal: s.stats.connected.Load(),
		ListenersCut:   s.stats.cut.Load(),
		TurnedAway:     s.stats.turnedAway.Load(),
		Buffer:         s.ring.Size(),
	})
	if err != nil {
		writeError(ctx, fasthttp.StatusInternalServerError, "health: "+err.Error())
		return
	}
	ctx.SetContentType("application/json")
	ctx.SetBody(body)
}
