package fanout_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/fanout"
)

// Every benchmark here runs twice: impl=ring is this package; impl=chan is the
// conventional design it replaces, a mutex-guarded set of buffered channels,
// one per subscriber, that drops a message for a subscriber whose channel is
// full. Both get the same workload in the same run, so their ratio means
// something even on a noisy machine.
//
//	go test -run '^$' -bench . -benchmem -count 6 ./pkg/fanout | tee new.txt
//	benchstat -col /impl new.txt # ring and chan side by side, with ratios

// chanFanout is the baseline.
type chanFanout struct {
	subs map[chan []byte]struct{}
	mu   sync.Mutex
	size int
}

func newChanFanout(size int) *chanFanout {
	return &chanFanout{subs: make(map[chan []byte]struct{}), size: size}
}

func (c *chanFanout) publish(b []byte) {
	c.mu.Lock()
	for ch := range c.subs {
		select {
		case ch <- b:
		default: // full: this subscriber loses the message
		}
	}
	c.mu.Unlock()
}

func (c *chanFanout) subscribe() chan []byte {
	ch := make(chan []byte, c.size)
	c.mu.Lock()
	c.subs[ch] = struct{}{}
	c.mu.Unlock()
	return ch
}

func (c *chanFanout) unsubscribe(ch chan []byte) {
	c.mu.Lock()
	delete(c.subs, ch)
	c.mu.Unlock()
}

// sink stands for what a streamer does with a frame: copy it into its write
// buffer, and "flush" (reset) when the buffer is full.
type sink struct {
	buf []byte
}

func (s *sink) write(b []byte) {
	if len(s.buf)+len(b) > cap(s.buf) {
		s.buf = s.buf[:0]
	}
	s.buf = append(s.buf, b...)
}

// system is one fan-out design under test.
type system struct {
	// publish sends one message of the given bytes.
	publish func(data []byte)
	// start starts one subscriber goroutine that adds to delivered the
	// number of messages it has taken, until ctx is done; it returns when
	// the subscriber is registered.
	start func(ctx context.Context, wg *sync.WaitGroup, delivered *atomic.Int64)
	// idle adds a subscriber that never reads; it lives until close.
	idle  func()
	close func()
}

const benchRingSize = 4096

func ringSystem() system {
	r := fanout.New(fanout.Options{Size: benchRingSize})
	return system{
		publish: func(data []byte) { _, _ = r.Publish("bench", data) },
		start: func(ctx context.Context, wg *sync.WaitGroup, delivered *atomic.Int64) {
			sub, err := r.Subscribe()
			if err != nil {
				panic(err)
			}
			wg.Go(func() {
				defer sub.Close()
				s := sink{buf: make([]byte, 0, 32<<10)}
				batch := make([]*fanout.Frame, 0, 128)
				for {
					batch, _ = sub.Read(batch[:0])
					for _, f := range batch {
						s.write(f.Bytes())
					}
					if len(batch) > 0 {
						delivered.Add(int64(len(batch)))
						continue
					}
					if sub.Wait(ctx, 0) != nil {
						return
					}
				}
			})
		},
		idle:  func() { _, _ = r.Subscribe() },
		close: func() { _ = r.Close() },
	}
}

func chanSystem() system {
	c := newChanFanout(benchRingSize)
	return system{
		publish: c.publish,
		start: func(ctx context.Context, wg *sync.WaitGroup, delivered *atomic.Int64) {
			ch := c.subscribe()
			wg.Go(func() {
				defer c.unsubscribe(ch)
				s := sink{buf: make([]byte, 0, 32<<10)}
				for {
					select {
					case b := <-ch:
						s.write(b)
						n := int64(1)
					drain: // take what else is ready, as a batching streamer would
						for n < 128 {
							select {
							case b = <-ch:
								s.write(b)
								n++
							default:
								break drain
							}
						}
						delivered.Add(n)
					case <-ctx.Done():
						return
					}
				}
			})
		},
		idle:  func() { _ = c.subscribe() },
		close: func() {},
	}
}

// startSubscribers starts n subscribers of s, reading (start) or idle, and
// returns a function that stops the readers and waits for them.
func startSubscribers(s system, n int, idle bool, delivered *atomic.Int64) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range n {
		if idle {
			s.idle()
		} else {
			s.start(ctx, &wg, delivered)
		}
	}
	return func() { cancel(); wg.Wait() }
}

var systems = []struct {
	name string
	new  func() system
}{
	{"impl=ring", ringSystem},
	{"impl=chan", chanSystem},
}

// BenchmarkPublish measures the publisher's cost per message with subs
// subscribers, in two modes:
//
//   - idle: subscribed but not reading (a stalled listener). This isolates the
//     algorithm: the ring's publish never touches subscribers, so its cost
//     stays flat, while the baseline visits every channel on every publish.
//   - draining: every subscriber reads as fast as it can, so the publisher
//     also shares the two cores with them; this is wall-clock per message
//     under that load, not the publisher's own CPU time.
//
// One alloc/op for the ring is the Frame header that Publish allocates
// (TestPublishAllocatesOnlyTheFrame).
func BenchmarkPublish(b *testing.B) {
	for _, mode := range []string{"idle", "draining"} {
		for _, subs := range []int{0, 1, 1000, 10000} {
			for _, sys := range systems {
				b.Run(fmt.Sprintf("mode=%s/subs=%d/%s", mode, subs, sys.name), func(b *testing.B) {
					s := sys.new()
					defer s.close()
					var delivered atomic.Int64
					stop := startSubscribers(s, subs, mode == "idle", &delivered)
					data := []byte("data: {\"event\":\"benchmark\"}\n\n")
					b.ReportAllocs()
					for b.Loop() {
						s.publish(data)
					}
					b.StopTimer()
					stop()
				})
			}
		}
	}
}

// BenchmarkDeliver measures publish-to-all-delivered: one publisher sends
// messages in windows of 256, and waits after each window until every
// subscriber has taken all of them (so nobody falls behind and nothing is
// dropped in either design). deliveries/s counts messages taken by
// subscribers, summed over subscribers.
func BenchmarkDeliver(b *testing.B) {
	const window = 256
	for _, subs := range []int{1, 10, 100, 1000} {
		for _, size := range []int{128, 1024} {
			for _, sys := range systems {
				b.Run(fmt.Sprintf("subs=%d/size=%d/%s", subs, size, sys.name), func(b *testing.B) {
					s := sys.new()
					defer s.close()
					var delivered atomic.Int64
					stop := startSubscribers(s, subs, false, &delivered)
					data := make([]byte, size)
					b.SetBytes(int64(size))
					b.ReportAllocs()
					published := int64(0)
					waitAll := func() {
						for delivered.Load() < published*int64(subs) {
							runtime.Gosched()
						}
					}
					start := time.Now()
					for b.Loop() {
						s.publish(data)
						published++
						if published%window == 0 {
							waitAll()
						}
					}
					waitAll()
					elapsed := time.Since(start)
					b.StopTimer()
					b.ReportMetric(float64(delivered.Load())/elapsed.Seconds(), "deliveries/s")
					stop()
				})
			}
		}
	}
}
