package server

import (
	"log/slog"
	"runtime/debug"
	"sync"

	"golang.org/x/time/rate"
)

// warnLimiter logs warnings about listeners the service cuts or finds
// lagging at most warnBurst at once and then one per second, counting the
// ones it suppressed, so that no client can flood the log, while a single
// listener's lag and cut are both told.
type warnLimiter struct {
	log        *slog.Logger
	limit      *rate.Limiter
	suppressed int
	mu         sync.Mutex
}

// warnBurst is how many warnings the limiter lets through at once.
const warnBurst = 10

func newWarnLimiter(log *slog.Logger) warnLimiter {
	return warnLimiter{log: log, limit: rate.NewLimiter(1, warnBurst)}
}

func (s *Server) warnCut(msg string, attrs ...any) {
	w := &s.warned
	w.mu.Lock()
	if !w.limit.Allow() {
		w.suppressed++
		w.mu.Unlock()
		return
	}
	suppressed := w.suppressed
	w.suppressed = 0
	w.mu.Unlock()
	if suppressed > 0 {
		attrs = append(attrs, "suppressed", suppressed)
	}
	w.log.Warn(msg, attrs...)
}

func stack() string { return string(debug.Stack()) }
