package server

import (
	"log/slog"
	"runtime/debug"
	"sync"
	"time"
)

// warnLimiter logs warnings about listeners cut by the service at most once
// per second, counting the ones it suppressed, so that no client can flood
// the log.
type warnLimiter struct {
	log        *slog.Logger
	last       time.Time
	suppressed int
	mu         sync.Mutex
}

func (s *Server) warnCut(msg string, attrs ...any) {
	w := &s.warned
	w.mu.Lock()
	now := time.Now()
	if now.Sub(w.last) < time.Second {
		w.suppressed++
		w.mu.Unlock()
		return
	}
	suppressed := w.suppressed
	w.last, w.suppressed = now, 0
	w.mu.Unlock()
	if suppressed > 0 {
		attrs = append(attrs, "suppressed", suppressed)
	}
	w.log.Warn(msg, attrs...)
}

func stack() string { return string(debug.Stack()) }
