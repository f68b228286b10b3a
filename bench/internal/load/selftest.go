package load

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// trivialServer is the in-process counterpart used to measure sseload's own
// ceiling. It does as little work as possible: /events streams one
// pre-built buffer of chunked frames over and over, /api/events answers 200
// without looking at the body. Whatever rate sseload reaches against it is
// what the tool can count at most on this machine (the server shares the CPU
// with it, so this is a lower bound of the tool's true ceiling).
type trivialServer struct {
	ln     net.Listener
	stream []byte
	posts  atomic.Int64

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// buildFrameStream returns a buffer of at least 64 KiB holding chunked SSE
// frames (framesPerChunk frames per chunk, each frame carrying a body of
// about size bytes plus user_ip, as the service would send it).
func buildFrameStream(size, framesPerChunk int) (stream []byte, frameLen int) {
	body := NewBody("selftest", 0, size).Bytes()
	frame := make([]byte, 0, len(body)+40)
	frame = append(frame, "data: "...)
	frame = append(frame, body[:len(body)-1]...)
	frame = append(frame, `,"user_ip":"127.0.0.1"}`+"\n\n"...)
	payload := bytes.Repeat(frame, framesPerChunk)
	var chunk []byte
	chunk = strconv.AppendInt(chunk, int64(len(payload)), 16)
	chunk = append(chunk, "\r\n"...)
	chunk = append(chunk, payload...)
	chunk = append(chunk, "\r\n"...)
	n := (64<<10 + len(chunk) - 1) / len(chunk)
	return bytes.Repeat(chunk, n), len(frame)
}

func startTrivialServer(size, framesPerChunk int) (*trivialServer, int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, 0, err
	}
	stream, frameLen := buildFrameStream(size, framesPerChunk)
	s := &trivialServer{ln: ln, stream: stream, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.serve()
	return s, frameLen, nil
}

func (s *trivialServer) addr() string { return s.ln.Addr().String() }

func (s *trivialServer) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.handle(c)
	}
}

var (
	trivialSSEHead = []byte("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"d\r\n: connected\n\n\r\n")
	trivialPostOK   = []byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	trivialNotFound = []byte("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
)

func (s *trivialServer) handle(c net.Conn) {
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
		s.wg.Done()
	}()
	br := bufio.NewReaderSize(c, 16<<10)
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return
		}
		method, rest, _ := strings.Cut(string(line), " ")
		path, _, _ := strings.Cut(rest, " ")
		var contentLength int
		for {
			h, err := br.ReadSlice('\n')
			if err != nil {
				return
			}
			if len(bytes.TrimSpace(h)) == 0 {
				break
			}
			if k, v, ok := bytes.Cut(h, []byte(":")); ok && strings.EqualFold(string(bytes.TrimSpace(k)), "Content-Length") {
				contentLength, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
			}
		}
		switch {
		case method == "GET" && strings.HasSuffix(path, "/events"):
			if _, err := c.Write(trivialSSEHead); err != nil {
				return
			}
			for {
				if _, err := c.Write(s.stream); err != nil {
					return
				}
			}
		case method == "POST":
			if _, err := br.Discard(contentLength); err != nil {
				return
			}
			s.posts.Add(1)
			if _, err := c.Write(trivialPostOK); err != nil {
				return
			}
		default:
			if _, err := c.Write(trivialNotFound); err != nil {
				return
			}
		}
	}
}

func (s *trivialServer) close() {
	s.mu.Lock()
	s.closed = true
	s.ln.Close()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// RunSelfTest measures the tool's own ceiling against a trivial in-process
// server: first cfg.Listeners listeners counting frames for cfg.Duration,
// then cfg.Producers producers posting as fast as possible for cfg.Duration.
func RunSelfTest(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Listeners <= 0 && cfg.Producers <= 0 {
		return nil, errors.New("self-test needs listeners or producers")
	}
	if cfg.FramesPerChunk <= 0 {
		cfg.FramesPerChunk = 1
	}
	// The trivial server streams every frame to everyone: no filter.
	cfg.Filters, cfg.Buckets = 0, 0
	srv, frameLen, err := startTrivialServer(cfg.Size, cfg.FramesPerChunk)
	if err != nil {
		return nil, err
	}
	defer srv.close()
	cfg.URL = "http://" + srv.addr()
	cfg.ServerPID = 0
	cfg.SlowFraction = 0

	res := &SelfTestResult{
		Listeners:      cfg.Listeners,
		FrameBytes:     frameLen,
		FramesPerChunk: cfg.FramesPerChunk,
		Producers:      cfg.Producers,
		Note: "trivial in-process server sharing the CPUs (its CPU time is included in the process CPU): " +
			"the rates are lower bounds of what sseload can count; per-CPU-second figures include the server's share",
	}
	var rep *Report
	var warnings []string
	load1 := loadAvg()
	var hostBusy, procCPU, wall float64
	if cfg.Listeners > 0 {
		lcfg := cfg
		lcfg.Producers = 0
		e, err := newEngine(ctx, lcfg)
		if err != nil {
			return nil, err
		}
		rep = e.newReport(ModeSelfTest)
		if _, err := e.connect(ctx); err != nil {
			e.closeListeners()
			return nil, fmt.Errorf("self-test listeners: %w", err)
		}
		prog := startProgress(e, cfg.Progress)
		e.setPhase("count")
		before := e.deliveredNow(nil)
		cpu0, _ := ReadProc(0)
		b0, _, _ := readHostBusy()
		t0 := time.Now()
		sleepCtx(ctx, cfg.Duration)
		after := e.deliveredNow(nil)
		el := time.Since(t0)
		cpu1, _ := ReadProc(0)
		b1, _, _ := readHostBusy()
		hostBusy += b1 - b0
		procCPU += cpu1.CPUSeconds - cpu0.CPUSeconds
		wall += el.Seconds()
		prog.stop()
		e.closeListeners()
		var n int64
		for i := range after {
			n += after[i] - before[i]
		}
		res.DeliveriesPerSec = round1(float64(n) / el.Seconds())
		res.MiBPerSec = round1(float64(n) * float64(frameLen) / el.Seconds() / (1 << 20))
		res.ListenerCPUSec = round3(cpu1.CPUSeconds - cpu0.CPUSeconds)
		if res.ListenerCPUSec > 0 {
			res.DeliveriesPerCPU = round1(float64(n) / res.ListenerCPUSec)
		}
		warnings = append(warnings, e.warnings...)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	if cfg.Producers > 0 {
		pcfg := cfg
		pcfg.Listeners = 0
		pcfg.Rate = 0
		e, err := newEngine(ctx, pcfg)
		if err != nil {
			return nil, err
		}
		if rep == nil {
			rep = e.newReport(ModeSelfTest)
		}
		e.producers = make([]*producer, pcfg.Producers)
		for i := range e.producers {
			e.producers[i] = newProducer(e, i)
		}
		prog := startProgress(e, cfg.Progress)
		e.setPhase("post")
		cpu0, _ := ReadProc(0)
		b0, _, _ := readHostBusy()
		el := e.runProducers(ctx, cfg.Duration)
		cpu1, _ := ReadProc(0)
		b1, _, _ := readHostBusy()
		hostBusy += b1 - b0
		procCPU += cpu1.CPUSeconds - cpu0.CPUSeconds
		wall += el.Seconds()
		prog.stop()
		h := newHist()
		var hmax int64
		for _, p := range e.producers {
			h.Merge(p.lat)
			if p.latMax > hmax {
				hmax = p.latMax
			}
			p.close()
		}
		res.PostsPerSec = round1(float64(e.sentTotal()) / el.Seconds())
		res.PostLatency = summarize(h, hmax)
		res.ProducerCPUSec = round3(cpu1.CPUSeconds - cpu0.CPUSeconds)
		if res.ProducerCPUSec > 0 {
			res.PostsPerCPU = round1(float64(e.sentTotal()) / res.ProducerCPUSec)
		}
		warnings = append(warnings, e.warnings...)
	}
	rep.Params.URL = "in-process trivial server"
	if wall > 0 && hostBusy > 0 {
		rep.Host = &HostStats{LoadAvg1: load1, BusyCores: round3(hostBusy / wall), OtherCores: round3(math.Max(0, (hostBusy-procCPU)/wall))}
		if rep.Host.OtherCores > 0.25 {
			warnings = append(warnings, fmt.Sprintf("other processes used %.2f cores during the self-test: the ceilings are understated", rep.Host.OtherCores))
		}
	}
	rep.SelfTest = res
	rep.Warnings = warnings
	if self, err := ReadProc(0); err == nil {
		rep.Tool.PeakRSSKiB = self.HWMKiB
		rep.Tool.CPUSeconds = round3(res.ListenerCPUSec + res.ProducerCPUSec)
		rep.Tool.CPUCores = round3(rep.Tool.CPUSeconds / (cfg.Duration.Seconds() * float64(boolInt(cfg.Listeners > 0)+boolInt(cfg.Producers > 0))))
	}
	return rep, ctx.Err()
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
