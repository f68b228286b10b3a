package fanout_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/fanout"
)

// Benchmarks of topics. Each runs beside a baseline in the same run:
// impl=chan is the conventional design, a mutex-guarded map from topic to
// the buffered channels of its subscribers, one per subscriber, where a
// publish sends to every channel of its topic and drops a message for a
// subscriber whose channel is full.
//
//	go test -run '^$' -bench 'Topic' -benchmem -count 6 ./pkg/fanout | tee topics.txt
//	benchstat -col /impl topics.txt

// topicChans is the baseline.
type topicChans struct {
	byTopic map[string]map[chan []byte]struct{}
	dropped atomic.Int64 // messages lost to full channels
	mu      sync.Mutex
	size    int
}

func newTopicChans(size int) *topicChans {
	return &topicChans{byTopic: make(map[string]map[chan []byte]struct{}), size: size}
}

func (c *topicChans) publish(topic string, b []byte) {
	c.mu.Lock()
	for ch := range c.byTopic[topic] {
		select {
		case ch <- b:
		default:
			c.dropped.Add(1)
		}
	}
	c.mu.Unlock()
}

func (c *topicChans) subscribe(topic string) chan []byte {
	ch := make(chan []byte, c.size)
	c.mu.Lock()
	if c.byTopic[topic] == nil {
		c.byTopic[topic] = make(map[chan []byte]struct{})
	}
	c.byTopic[topic][ch] = struct{}{}
	c.mu.Unlock()
	return ch
}

// topicBench is one fan-out design with subscriber goroutines on topics.
type topicBench struct {
	publish func(topic string, data []byte)
	// taken is how many messages subscribers have taken or been told they
	// lost, summed over subscribers.
	taken func() int64
	// settle waits until every subscriber has read what it was sent and is
	// waiting again.
	settle func()
	stop   func()
}

// topicBenchRing starts subs subscribers on a ring, subscriber i on
// topics[i%len(topics)], each reading until stopped and asleep in Wait when
// it has nothing to read; it returns once all of them are asleep.
func topicBenchRing(tb testing.TB, subs int, topics []string) topicBench {
	tb.Helper()
	r := fanout.New(fanout.Options{Size: benchRingSize, MaxTopics: len(topics) + 2})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var taken atomic.Int64
	for i := range subs {
		sub, err := r.Subscribe(topics[i%len(topics)])
		if err != nil {
			tb.Fatal(err)
		}
		wg.Go(func() {
			defer sub.Close()
			batch := make([]*fanout.Frame, 0, 128)
			for {
				var missed uint64
				batch, missed = sub.Read(batch[:0])
				if n := len(batch) + int(missed); n > 0 {
					taken.Add(int64(n))
					continue
				}
				if sub.Wait(ctx, 0) != nil {
					return
				}
			}
		})
	}
	asleep := func() int {
		n := 0
		for _, topic := range topics {
			n += r.TopicSleepers(topic)
		}
		return n
	}
	settle := func() {
		for deadline := time.Now().Add(time.Minute); asleep() < subs; {
			if time.Now().After(deadline) {
				tb.Fatalf("only %d of %d subscribers asleep after a minute", asleep(), subs)
			}
			time.Sleep(time.Millisecond)
		}
	}
	settle()
	return topicBench{
		publish: func(topic string, data []byte) { _, _ = r.Publish(topic, data) },
		taken:   taken.Load,
		settle:  settle,
		stop: func() {
			cancel()
			wg.Wait()
			_ = r.Close()
		},
	}
}

// topicBenchChans is topicBenchRing for the baseline.
func topicBenchChans(tb testing.TB, subs int, topics []string) topicBench {
	tb.Helper()
	c := newTopicChans(benchRingSize)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var taken atomic.Int64
	chans := make([]chan []byte, 0, subs)
	for i := range subs {
		ch := c.subscribe(topics[i%len(topics)])
		chans = append(chans, ch)
		wg.Go(func() {
			for {
				select {
				case <-ch:
					taken.Add(1)
				case <-ctx.Done():
					return
				}
			}
		})
	}
	return topicBench{
		publish: c.publish,
		taken:   func() int64 { return taken.Load() + c.dropped.Load() },
		settle: func() {
			for _, ch := range chans {
				for len(ch) > 0 {
					time.Sleep(time.Millisecond)
				}
			}
		},
		stop: func() { cancel(); wg.Wait() },
	}
}

var topicBenchImpls = []struct {
	name  string
	start func(tb testing.TB, subs int, topics []string) topicBench
}{
	{"impl=ring", topicBenchRing},
	{"impl=chan", topicBenchChans},
}

func topicNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("t%d", i)
	}
	return names
}

// BenchmarkPublishTopics measures a publish with 1, 100 and 1,000 topics
// alive, with no subscriber and with 10,000 subscribers spread over those
// topics, asleep in Wait. The frames go to a topic none of them receives
// (publish=elsewhere), so the subscribers stay asleep: the ring's cost
// should not move with the number of topics or subscribers.
func BenchmarkPublishTopics(b *testing.B) {
	data := []byte("data: {\"event\":\"benchmark\"}\n\n")
	for _, topics := range []int{1, 100, 1000} {
		for _, subs := range []int{0, 10_000} {
			for _, impl := range topicBenchImpls {
				b.Run(fmt.Sprintf("topics=%d/subs=%d/%s", topics, subs, impl.name), func(b *testing.B) {
					names := topicNames(topics)
					sys := impl.start(b, subs, names)
					defer sys.stop()
					// Every topic alive, the elsewhere one included, and
					// every subscriber back to sleep.
					for _, name := range append(names, "elsewhere") {
						sys.publish(name, data)
					}
					sys.settle()
					b.ReportAllocs()
					for b.Loop() {
						sys.publish("elsewhere", data)
					}
				})
			}
		}
	}
}

// processCPU returns the CPU time (user and system) the process has used.
func processCPU(tb testing.TB) time.Duration {
	tb.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkQuietTopicCPU measures the process's CPU time per published
// frame (from getrusage, so the subscribers' goroutines and the waking count
// too) while one publisher publishes on topic "busy" as fast as it can, and
// 1,000 subscribers read topic "quiet" (subs=quiet), or "busy" (subs=busy),
// or there is no subscriber (subs=none). Quiet subscribers are never woken,
// so subs=quiet should cost what subs=none costs, far less than subs=busy.
// The measure ends once every subscriber has taken (or been told it lost)
// every frame for it.
func BenchmarkQuietTopicCPU(b *testing.B) {
	const subs = 1000
	data := []byte("data: {\"event\":\"benchmark\"}\n\n")
	for _, where := range []string{"none", "quiet", "busy"} {
		for _, impl := range topicBenchImpls {
			b.Run(fmt.Sprintf("subs=%s/%s", where, impl.name), func(b *testing.B) {
				n := subs
				if where == "none" {
					n = 0
				}
				sys := impl.start(b, n, []string{where})
				defer sys.stop()
				sys.publish("busy", data)
				want := func(published int64) int64 {
					if where == "busy" {
						return published * subs
					}
					return 0
				}
				for sys.taken() < want(1) {
					time.Sleep(time.Millisecond)
				}
				published := int64(1)
				b.ReportAllocs()
				cpu := processCPU(b)
				start := time.Now()
				for b.Loop() {
					sys.publish("busy", data)
					published++
				}
				for sys.taken() < want(published) {
					time.Sleep(100 * time.Microsecond)
				}
				used := processCPU(b) - cpu
				elapsed := time.Since(start)
				b.StopTimer()
				frames := float64(published - 1)
				b.ReportMetric(float64(used.Nanoseconds())/frames, "cpu-ns/frame")
				b.ReportMetric(float64(elapsed.Nanoseconds())/frames, "wall-ns/frame")
			})
		}
	}
}
