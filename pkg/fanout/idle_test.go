package fanout

import (
	"context"
	"sync"
	"syscall"
	"testing"
	"time"
)

// sleepers returns how many subscribers to every topic are registered as
// sleeping.
func (r *Ring) sleepers() int { return int(r.root.sleeping.Load()) }

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
		sub, err := r.Subscribe()
		if err != nil {
			t.Fatal(err)
		}
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
	a, _ := r.Subscribe()
	b, _ := r.Subscribe()
	c, _ := r.Subscribe()
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
	set := &r.root.sets[0]
	bs, cs := &b.sleepers[0], &c.sleepers[0]
	if got := r.sleepers(); got != 2 || bs.idx < 0 || cs.idx < 0 || set.sleepers[bs.idx] != bs || set.sleepers[cs.idx] != cs {
		t.Fatalf("after Close: %d sleepers, indexes b=%d c=%d", got, bs.idx, cs.idx)
	}
	if _, err := r.Publish("", nil); err != nil {
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
