package fanout

import (
	"context"
	"sync"
	"syscall"
	"testing"
	"time"
)

// sleepers returns how many subscribers are registered as sleeping.
func (r *Ring) sleepers() int {
	n := 0
	for i := range r.shards {
		n += int(r.shards[i].sleeping.Load())
	}
	return n
}

func cpuTime(tb testing.TB) time.Duration {
	tb.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestIdleSubscribersUseNoCPU holds 10,000 sleeping subscribers and checks,
// from the process's CPU time rather than the wall clock, that they cost
// (nearly) nothing while nothing is published: no spinning, no polling.
func TestIdleSubscribersUseNoCPU(t *testing.T) {
	if testing.Short() {
		t.Skip("holds 10,000 goroutines")
	}
	const n = 10_000
	r := New(Options{Size: 64})
	defer r.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range n {
		sub := r.Subscribe()
		wg.Go(func() {
			defer sub.Close()
			for {
				if err := sub.Wait(ctx, time.Hour); err != nil {
					return
				}
			}
		})
	}
	defer func() { cancel(); wg.Wait() }()

	deadline := time.Now().Add(30 * time.Second)
	for r.sleepers() < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d subscribers asleep after 30s", r.sleepers(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}

	const window = time.Second
	before := cpuTime(t)
	time.Sleep(window)
	used := cpuTime(t) - before
	// Spinning subscribers would burn whole cores (2 s of CPU per second on
	// two cores). Allow the runtime's own background work (GC, sysmon).
	if limit := window / 20; used > limit {
		t.Errorf("%d idle subscribers used %v of CPU in %v, want under %v", n, used, window, limit)
	}
	t.Logf("%d idle subscribers: %v CPU in %v", n, used, window)
}

// TestSleeperBookkeeping checks that sleepers are registered once however
// many times they time out, and unregistered by Close and by a wake-up.
func TestSleeperBookkeeping(t *testing.T) {
	r := New(Options{Size: 8, Shards: 1})
	defer r.Close()
	a, b, c := r.Subscribe(), r.Subscribe(), r.Subscribe()
	for range 3 {
		for _, s := range []*Subscriber{a, b, c} {
			if err := s.Wait(context.Background(), time.Microsecond); err != ErrTimeout {
				t.Fatalf("Wait: %v", err)
			}
		}
	}
	if got := r.sleepers(); got != 3 {
		t.Fatalf("sleepers after repeated timeouts: got %d, want 3", got)
	}
	_ = a.Close()
	if got := r.sleepers(); got != 2 || b.idx < 0 || c.idx < 0 || r.shards[0].sleepers[b.idx] != b || r.shards[0].sleepers[c.idx] != c {
		t.Fatalf("after Close: %d sleepers, indexes b=%d c=%d", got, b.idx, c.idx)
	}
	if _, err := r.Publish(NewFrame(nil)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for r.sleepers() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("publish did not wake the shard: %d sleepers", r.sleepers())
		}
		time.Sleep(time.Millisecond)
	}
	_ = b.Close()
	_ = c.Close()
}
