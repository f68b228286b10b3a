package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/sseclient"
)

// churnKind is how a churning listener behaves; each worker keeps one.
type churnKind int

const (
	// readClose reads events (parsed by sseclient, as a browser would)
	// for a while, then closes its connection cleanly.
	readClose churnKind = iota
	// readReset reads for a while, then resets its connection (RST).
	readReset
	// neverRead sends its request and never reads, then closes.
	neverRead
	// dropEarly goes away at once: after its whole request, or half of it.
	dropEarly
	numKinds
)

func (k churnKind) String() string {
	switch k {
	case readClose:
		return "read then close"
	case readReset:
		return "read then reset"
	case neverRead:
		return "never read"
	case dropEarly:
		return "dropped at once"
	}
	return fmt.Sprintf("kind %d", int(k))
}

// churn runs the churning listeners: workers that connect to /events,
// behave as their kind says for a random hold time, disconnect, and start
// again, until ctx ends.
type churn struct {
	addr    string
	holdMin time.Duration
	holdMax time.Duration
	client  *http.Client

	connects [numKinds]atomic.Int64
	events   atomic.Int64 // events the readClose listeners parsed
	errors   atomic.Int64
	firstErr atomic.Pointer[error]
	wg       sync.WaitGroup
}

func newChurn(addr string, holdMin, holdMax time.Duration) *churn {
	return &churn{addr: addr, holdMin: holdMin, holdMax: holdMax,
		client: &http.Client{Transport: &http.Transport{DisableKeepAlives: true, DisableCompression: true}}}
}

// start launches n workers, their kinds evenly mixed.
func (c *churn) start(ctx context.Context, n int) {
	for i := range n {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.worker(ctx, churnKind(i%int(numKinds)), uint64(i))
		}()
	}
}

// wait returns once every worker has stopped.
func (c *churn) wait() {
	c.wg.Wait()
	c.client.CloseIdleConnections()
}

// total returns the connections made so far.
func (c *churn) total() int64 {
	var n int64
	for i := range c.connects {
		n += c.connects[i].Load()
	}
	return n
}

func (c *churn) worker(ctx context.Context, kind churnKind, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, uint64(time.Now().UnixNano())))
	for n := 0; ctx.Err() == nil; n++ {
		hold := c.holdMin + time.Duration(rng.Int64N(int64(c.holdMax-c.holdMin)+1))
		var err error
		switch kind {
		case readClose:
			err = c.readThenClose(ctx, hold)
		case readReset:
			err = c.raw(ctx, hold, true, true)
		case neverRead:
			err = c.raw(ctx, hold, false, false)
		case dropEarly:
			err = c.drop(ctx, n%2 == 0)
		}
		c.connects[kind].Add(1)
		if err != nil && !ended(ctx) {
			c.errors.Add(1)
			c.firstErr.CompareAndSwap(nil, &err)
		}
		// A listener that leaves at once is away for its hold time, so
		// that every kind connects about as often.
		pause := 20 * time.Millisecond
		if kind == dropEarly {
			pause = hold
		}
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
	}
}

var errStatus = errors.New("GET /events did not answer 200")

// ended reports whether ctx is done or past its deadline: a dial can fail
// on the deadline a moment before the context reports it.
func ended(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}

// readThenClose reads the stream through sseclient for hold, then closes
// the response body, which closes the connection (FIN).
func (c *churn) readThenClose(ctx context.Context, hold time.Duration) error {
	hctx, cancel := context.WithTimeout(ctx, hold)
	defer cancel()
	req, err := http.NewRequestWithContext(hctx, http.MethodGet, "http://"+c.addr+"/events", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.client.Do(req)
	if err != nil {
		return ignoreDeadline(hctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: %s", errStatus, resp.Status)
	}
	r := sseclient.NewReader(resp.Body)
	for {
		m, err := r.Next()
		if err != nil {
			return ignoreDeadline(hctx, err)
		}
		if !m.Comment {
			c.events.Add(1)
		}
	}
}

// ignoreDeadline drops the error that ending the hold time causes.
func ignoreDeadline(hctx context.Context, err error) error {
	if ended(hctx) {
		return nil
	}
	return err
}

func (c *churn) request() []byte {
	return []byte("GET /events HTTP/1.1\r\nHost: " + c.addr + "\r\nAccept: text/event-stream\r\n\r\n")
}

// raw sends the request on a plain connection, reads (or not) for hold,
// then closes it, with a reset when asked (SO_LINGER 0).
func (c *churn) raw(ctx context.Context, hold time.Duration, read, reset bool) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return err
	}
	tc := conn.(*net.TCPConn)
	defer func() {
		if reset {
			_ = tc.SetLinger(0)
		}
		tc.Close()
	}()
	if !read {
		_ = tc.SetReadBuffer(4096) // back-pressure the server early
	}
	if _, err := tc.Write(c.request()); err != nil {
		return err
	}
	deadline := time.Now().Add(hold)
	if !read {
		select {
		case <-ctx.Done():
		case <-time.After(hold):
		}
		return nil
	}
	_ = tc.SetReadDeadline(deadline)
	_, err = io.Copy(io.Discard, tc)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return nil
	}
	if err == nil {
		return io.ErrUnexpectedEOF // the server ended the stream
	}
	return err
}

// drop connects and goes away at once, after the whole request or after
// half of it.
func (c *churn) drop(ctx context.Context, whole bool) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	req := c.request()
	if !whole {
		req = req[:len(req)/2]
	}
	_, err = conn.Write(req)
	return err
}
