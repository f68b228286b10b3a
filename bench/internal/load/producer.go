package load

import (
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"sync/atomic"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/valyala/fasthttp"
)

// producer posts events over one keep-alive connection of its own.
type producer struct {
	e    *engine
	id   int
	hc   *fasthttp.HostClient
	req  *fasthttp.Request
	resp *fasthttp.Response
	body *Body
	seq  uint64

	// owned by the producer goroutine while it runs; read after it returns
	lat      *hdrhistogram.Histogram
	latMax   int64
	statuses map[int]int64 // non-200 answers
	skipped  int64         // pacer slots dropped

	sent   atomic.Int64 // events accepted (HTTP 200)
	failed atomic.Int64 // transport errors and non-200 answers
}

func newProducer(e *engine, id int) *producer {
	t := e.postTarget(id)
	hc := &fasthttp.HostClient{
		Addr:                      t.dialAddr,
		Name:                      "sseload",
		IsTLS:                     t.tls,
		MaxConns:                  1,
		ReadTimeout:               e.cfg.PostTimeout,
		WriteTimeout:              e.cfg.PostTimeout,
		MaxIdemponentCallAttempts: 1,
		MaxIdleConnDuration:       time.Minute,
		Dial: func(addr string) (net.Conn, error) {
			return net.DialTimeout("tcp", addr, e.cfg.PostTimeout)
		},
	}
	if t.tls {
		host, _, err := net.SplitHostPort(t.host)
		if err != nil {
			host = t.host
		}
		hc.TLSConfig = &tls.Config{ServerName: host, InsecureSkipVerify: e.cfg.Insecure} //nolint:gosec // opt-in flag
	}
	p := &producer{
		e:        e,
		id:       id,
		hc:       hc,
		req:      fasthttp.AcquireRequest(),
		resp:     fasthttp.AcquireResponse(),
		body:     newWrappedBody(t.wire.bodyPrefix, t.wire.bodySuffix, string(e.runID), id, e.cfg.Size),
		lat:      newHist(),
		statuses: map[int]int64{},
	}
	p.req.SetRequestURI(t.postURL())
	p.req.Header.SetHost(t.host)
	p.req.Header.SetMethod(fasthttp.MethodPost)
	p.req.Header.SetContentType("application/json")
	for _, h := range t.wire.postHeaders {
		p.req.Header.Set(h[0], h[1])
	}
	p.req.SetBodyRaw(p.body.Bytes())
	return p
}

// run posts until deadline. With a positive rate (events/s for this
// producer) sends follow a Pacer whose first slot is at start.
func (p *producer) run(ctx context.Context, start, deadline time.Time, rate float64) {
	var pacer *Pacer
	if rate > 0 {
		pacer = NewPacer(rate, start)
	}
	for ctx.Err() == nil {
		if pacer != nil {
			if !pacer.Wait(ctx, deadline) {
				break
			}
		} else if !time.Now().Before(deadline) {
			break
		}
		if p.e.limited && p.e.budget.Add(-1) < 0 {
			break
		}
		p.postOne(ctx)
	}
	if pacer != nil {
		p.skipped += pacer.Skipped()
	}
}

func (p *producer) postOne(ctx context.Context) {
	t0 := time.Now()
	p.body.Set(p.seq, t0.UnixNano())
	p.seq++
	err := p.hc.Do(p.req, p.resp)
	d := time.Since(t0).Nanoseconds()
	recordClamped(p.lat, d)
	if d > p.latMax {
		p.latMax = d
	}
	if err != nil {
		p.failed.Add(1)
		p.statuses[0]++
		// Do not spin on a dead server.
		sleepCtx(ctx, 10*time.Millisecond)
		return
	}
	code := p.resp.StatusCode()
	if code == fasthttp.StatusOK && p.refused() {
		code = statusRefused
	}
	if code == fasthttp.StatusOK {
		p.sent.Add(1)
	} else {
		p.failed.Add(1)
		p.statuses[code]++
	}
}

// statusRefused stands for a 200 answer whose body reports an error
// (Centrifugo's API does so for some errors).
const statusRefused = 299

// refused reports whether a 200 answer's body reports an error.
func (p *producer) refused() bool {
	ep := p.e.target.wire.errorPrefix
	return ep != nil && bytes.HasPrefix(p.resp.Body(), ep)
}

// resetStats clears latency and status statistics (between warm-up and the
// measured phase). Not safe while run is active.
func (p *producer) resetStats() {
	p.lat.Reset()
	p.latMax = 0
	p.statuses = map[int]int64{}
	p.skipped = 0
	p.sent.Store(0)
	p.failed.Store(0)
}

func (p *producer) close() {
	p.hc.CloseIdleConnections()
	fasthttp.ReleaseRequest(p.req)
	fasthttp.ReleaseResponse(p.resp)
}
