package netguard_test

import (
	"fmt"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/netguard"
)

var (
	addrA = netip.MustParseAddr("192.0.2.1")
	addrB = netip.MustParseAddr("2001:db8::1")
)

func TestAddrLimiter(t *testing.T) {
	t.Parallel()
	for _, limit := range []int{1, 2, 5} {
		t.Run(fmt.Sprintf("limit=%d", limit), func(t *testing.T) {
			t.Parallel()
			l := netguard.NewAddrLimiter(limit)
			if l.Limit() != limit {
				t.Fatalf("Limit() = %d, want %d", l.Limit(), limit)
			}
			for i := range limit {
				if !l.Acquire(addrA) {
					t.Fatalf("Acquire %d of %d refused", i+1, limit)
				}
			}
			if l.Acquire(addrA) {
				t.Fatalf("Acquire over the limit of %d accepted", limit)
			}
			if !l.Acquire(addrB) {
				t.Fatal("another address is refused")
			}
			if got := l.Count(addrA); got != limit {
				t.Errorf("Count(A) = %d, want %d", got, limit)
			}
			if got := l.Len(); got != 2 {
				t.Errorf("Len() = %d, want 2", got)
			}
			l.Release(addrA)
			if !l.Acquire(addrA) {
				t.Fatal("Acquire refused after a Release")
			}
			for range limit {
				l.Release(addrA)
			}
			l.Release(addrB)
			if l.Count(addrA) != 0 || l.Count(addrB) != 0 || l.Len() != 0 {
				t.Errorf("after releasing everything: Count(A) %d, Count(B) %d, Len %d; want 0",
					l.Count(addrA), l.Count(addrB), l.Len())
			}
		})
	}
}

func TestAddrLimiterOff(t *testing.T) {
	t.Parallel()
	for _, limit := range []int{0, -3} {
		l := netguard.NewAddrLimiter(limit)
		if l.Limit() != 0 {
			t.Errorf("NewAddrLimiter(%d).Limit() = %d, want 0", limit, l.Limit())
		}
		for range 1000 {
			if !l.Acquire(addrA) {
				t.Fatalf("NewAddrLimiter(%d) refused", limit)
			}
		}
		l.Release(addrA)
		if l.Count(addrA) != 0 || l.Len() != 0 {
			t.Errorf("NewAddrLimiter(%d) counts: Count %d, Len %d", limit, l.Count(addrA), l.Len())
		}
	}
}

func TestAddrLimiterReleaseUnheld(t *testing.T) {
	t.Parallel()
	l := netguard.NewAddrLimiter(1)
	l.Release(addrA) // nothing held: ignored
	if !l.Acquire(addrA) || l.Acquire(addrA) {
		t.Fatal("a stray Release changed the count")
	}
}

func TestAddrLimiterNormalizes(t *testing.T) {
	t.Parallel()
	l := netguard.NewAddrLimiter(2)
	mapped := netip.MustParseAddr("::ffff:192.0.2.1")
	zoned := netip.MustParseAddr("fe80::1%eth0")
	plain := netip.MustParseAddr("fe80::1")
	for _, tc := range []struct {
		name string
		a, b netip.Addr
	}{
		{"IPv4-mapped and IPv4", mapped, addrA},
		{"zoned and plain", zoned, plain},
		{"invalid", netip.Addr{}, netip.Addr{}},
	} {
		if !l.Acquire(tc.a) || !l.Acquire(tc.b) {
			t.Fatalf("%s: refused under the limit", tc.name)
		}
		if l.Acquire(tc.a) || l.Acquire(tc.b) {
			t.Errorf("%s: counted as two addresses", tc.name)
		}
	}
	if l.Len() != 3 {
		t.Errorf("Len() = %d, want 3", l.Len())
	}
}

// TestAddrLimiterExactUnderConcurrency has goroutines race for the slots of
// a few addresses. No address is ever held more than the limit (checked by
// an independent count of holders), a simultaneous burst gets exactly the
// limit, and everything is released at the end.
func TestAddrLimiterExactUnderConcurrency(t *testing.T) {
	t.Parallel()
	const (
		limit      = 3
		goroutines = 32
		rounds     = 300
	)
	l := netguard.NewAddrLimiter(limit)
	addrs := []netip.Addr{addrA, addrB, netip.MustParseAddr("198.51.100.7")}
	holders := make([]atomic.Int32, len(addrs))
	var granted, over atomic.Int64
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for r := range rounds {
				i := (g + r) % len(addrs)
				if !l.Acquire(addrs[i]) {
					continue
				}
				granted.Add(1)
				if holders[i].Add(1) > limit {
					over.Add(1)
				}
				runtime.Gosched()
				holders[i].Add(-1)
				l.Release(addrs[i])
			}
		})
	}
	wg.Wait()
	if over.Load() != 0 {
		t.Errorf("an address was held by more than %d goroutines %d times", limit, over.Load())
	}
	if granted.Load() == 0 {
		t.Error("no Acquire succeeded")
	}
	if l.Len() != 0 {
		t.Errorf("Len() = %d after every Release, want 0", l.Len())
	}

	// A burst: every goroutine asks once for the same address at once.
	start := make(chan struct{})
	var won atomic.Int32
	for range goroutines {
		wg.Go(func() {
			<-start
			if l.Acquire(addrA) {
				won.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	if won.Load() != limit || l.Count(addrA) != limit {
		t.Errorf("burst of %d: %d acquired, Count %d; want exactly %d", goroutines, won.Load(), l.Count(addrA), limit)
	}
}

// TestAddrLimiterGivesMemoryBack holds a slot for many distinct addresses,
// as during a flood of clients, releases them, and checks that the memory
// the counts took is given back.
func TestAddrLimiterGivesMemoryBack(t *testing.T) {
	// Not parallel: it reads the heap's size.
	const n = 200_000
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	l := netguard.NewAddrLimiter(1)
	addr := func(i int) netip.Addr { // one per /64: IPv6 clients are counted per network
		return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 4: byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i), 15: 1})
	}
	before := heap()
	for i := range n {
		if !l.Acquire(addr(i)) {
			t.Fatal("refused a new address")
		}
	}
	full := heap()
	// Keep one address per shard or so, as long-lived listeners would.
	for i := 100; i < n; i++ {
		l.Release(addr(i))
	}
	after := heap()
	runtime.KeepAlive(l)
	grown, kept := int64(full)-int64(before), int64(after)-int64(before)
	t.Logf("counts for %d addresses took %d KiB; %d KiB kept for the 100 left", n, grown>>10, kept>>10)
	if grown <= 0 || kept > grown/10 {
		t.Errorf("after releasing all but 100 of %d addresses, %d of %d bytes are still held", n, kept, grown)
	}
	if l.Len() != 100 {
		t.Errorf("Len() = %d, want 100", l.Len())
	}
}

// TestAddrLimiterDoesNotAllocate checks the common path: a client opening
// and closing a stream, with its shard's map already made.
func TestAddrLimiterDoesNotAllocate(t *testing.T) {
	l := netguard.NewAddrLimiter(4)
	l.Acquire(addrA)
	for _, a := range []netip.Addr{addrA, addrB} {
		n := testing.AllocsPerRun(1000, func() {
			if l.Acquire(a) {
				l.Release(a)
			}
		})
		if n != 0 {
			t.Errorf("Acquire and Release of %v allocate %v times, want 0", a, n)
		}
	}
}

// TestAddrLimiterCountsIPv6PerNetwork: IPv6 clients are counted per /64, the
// block a host is commonly given, so one host cannot take as many slots as
// it has addresses; IPv4 (and IPv4-mapped) addresses one by one.
func TestAddrLimiterCountsIPv6PerNetwork(t *testing.T) {
	t.Parallel()
	l := netguard.NewAddrLimiter(2)
	for _, a := range []string{"2001:db8:1:2::1", "2001:db8:1:2:ffff::7"} {
		if !l.Acquire(netip.MustParseAddr(a)) {
			t.Fatalf("Acquire(%s) refused", a)
		}
	}
	if l.Acquire(netip.MustParseAddr("2001:db8:1:2::99")) {
		t.Fatal("a third address of the same /64 was accepted")
	}
	if !l.Acquire(netip.MustParseAddr("2001:db8:1:3::1")) {
		t.Fatal("an address of another /64 was refused")
	}
	if got := l.Count(netip.MustParseAddr("2001:db8:1:2:abcd::1")); got != 2 {
		t.Fatalf("Count of the /64: %d, want 2", got)
	}
	l.Release(netip.MustParseAddr("2001:db8:1:2::5")) // any address of the /64
	if !l.Acquire(netip.MustParseAddr("2001:db8:1:2::99")) {
		t.Fatal("refused after a release within the /64")
	}
	for _, a := range []string{"192.0.2.1", "::ffff:192.0.2.2"} {
		if !l.Acquire(netip.MustParseAddr(a)) {
			t.Fatalf("Acquire(%s) refused: IPv4 clients are counted one by one", a)
		}
	}
}
