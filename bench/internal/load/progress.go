package load

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// progress prints one status line per second: events sent and delivered,
// with the current rates. On a terminal the line is rewritten in place.
type progress struct {
	once sync.Once
	stopCh,
	done chan struct{}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func startProgress(e *engine, w io.Writer) *progress {
	p := &progress{stopCh: make(chan struct{}), done: make(chan struct{})}
	if w == nil {
		close(p.done)
		return p
	}
	tty := isTerminal(w)
	go func() {
		defer close(p.done)
		start := time.Now()
		last := start
		var lastSent, lastDelivered int64
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-p.stopCh:
				if tty {
					fmt.Fprintln(w)
				}
				return
			case now := <-t.C:
				sent := e.sentTotal()
				var delivered int64
				for _, l := range e.listeners {
					if !l.slow {
						delivered += l.delivered.Load()
					}
				}
				if sent < lastSent { // producer statistics reset after warm-up
					lastSent = 0
				}
				dt := now.Sub(last).Seconds()
				line := fmt.Sprintf("sseload %4.0fs %-7s sent %8s (%8s/s)  delivered %8s (%8s/s)  listeners %d/%d",
					now.Sub(start).Seconds(), *e.phase.Load(),
					FormatCount(float64(sent)), FormatCount(float64(sent-lastSent)/dt),
					FormatCount(float64(delivered)), FormatCount(float64(delivered-lastDelivered)/dt),
					e.readyCount.Load(), len(e.listeners))
				if tty {
					fmt.Fprint(w, "\r\033[K"+line)
				} else {
					fmt.Fprintln(w, line)
				}
				last, lastSent, lastDelivered = now, sent, delivered
			}
		}
	}()
	return p
}

func (p *progress) stop() {
	p.once.Do(func() {
		select {
		case <-p.done:
		default:
			close(p.stopCh)
		}
	})
	<-p.done
}
