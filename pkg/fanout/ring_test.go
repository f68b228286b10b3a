package fanout_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/testutil"

	"go.uber.org/goleak"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/fanout"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitFor is a generous deadline for things that should happen promptly;
// tests poll or block with it instead of sleeping a guessed amount.
const waitFor = 10 * time.Second

func newRing(tb testing.TB, opts fanout.Options) *fanout.Ring {
	tb.Helper()
	r := fanout.New(opts)
	tb.Cleanup(func() { _ = r.Close() })
	return r
}

// subscribe returns a subscriber to topics (every topic when none), closed
// when the test ends.
func subscribe(tb testing.TB, r *fanout.Ring, topics ...string) *fanout.Subscriber {
	tb.Helper()
	sub, err := r.Subscribe(topics...)
	if err != nil {
		tb.Fatalf("Subscribe(%q): %v", topics, err)
	}
	tb.Cleanup(func() { _ = sub.Close() })
	return sub
}

// publishN publishes n broadcast frames whose bytes are their index (from
// first), and returns the sequence numbers the ring gave them.
func publishN(tb testing.TB, r *fanout.Ring, first, n int) []uint64 {
	tb.Helper()
	return publishOn(tb, r, "", first, n)
}

// publishOn is publishN on a topic.
func publishOn(tb testing.TB, r *fanout.Ring, topic string, first, n int) []uint64 {
	tb.Helper()
	seqs := make([]uint64, 0, n)
	for i := first; i < first+n; i++ {
		seq, err := r.Publish(topic, []byte(fmt.Sprint(i)))
		if err != nil {
			tb.Fatalf("Publish(%d): %v", i, err)
		}
		seqs = append(seqs, seq)
	}
	return seqs
}

// readAll reads every ready frame and returns their bytes and the misses.
func readAll(sub *fanout.Subscriber) (got []string, missed uint64) {
	batch := make([]*fanout.Frame, 0, 3) // small, to exercise batch limits
	for {
		var m uint64
		batch, m = sub.Read(batch[:0])
		missed += m
		if len(batch) == 0 {
			return got, missed
		}
		for _, f := range batch {
			got = append(got, string(f.Bytes()))
		}
	}
}

// eventually polls cond until it holds, failing after waitFor.
func eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	testutil.Eventually(tb, waitFor, what, cond)
}

func seqStrings(from, to int) []string {
	var s []string
	for i := from; i <= to; i++ {
		s = append(s, fmt.Sprint(i))
	}
	return s
}

func equal(a, b []string) bool { return slices.Equal(a, b) }

func TestNewRoundsSizeUp(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want int }{{0, fanout.DefaultSize}, {1, 1}, {5, 8}, {8, 8}, {1000, 1024}} {
		r := newRing(t, fanout.Options{Size: tc.in, Shards: 1})
		if got := r.Size(); got != tc.want {
			t.Errorf("Size with Options.Size=%d: got %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestSequenceNumbers(t *testing.T) {
	t.Parallel()
	r := newRing(t, fanout.Options{Size: 8})
	seqs := publishN(t, r, 0, 20)
	for i, seq := range seqs {
		if seq != uint64(i+1) {
			t.Fatalf("frame %d: seq %d, want %d", i, seq, i+1)
		}
	}
	if got := r.Last(); got != 20 {
		t.Errorf("Last: got %d, want 20", got)
	}
}

// TestStalledSubscriberMissedCount checks the exact number of frames a
// subscriber that did not read learns it missed, and that it resumes at the
// oldest frame still held.
func TestStalledSubscriberMissedCount(t *testing.T) {
	t.Parallel()
	const size = 8
	for _, n := range []int{0, 1, size - 1, size, size + 1, 2*size + 3, 10*size + 5} {
		t.Run(fmt.Sprintf("published=%d", n), func(t *testing.T) {
			t.Parallel()
			r := newRing(t, fanout.Options{Size: size})
			sub := subscribe(t, r)
			publishN(t, r, 1, n)

			got, missed := readAll(sub)
			wantMissed := max(0, n-size)
			if missed != uint64(wantMissed) {
				t.Errorf("missed: got %d, want %d", missed, wantMissed)
			}
			if want := seqStrings(wantMissed+1, n); !equal(got, want) {
				t.Errorf("frames: got %v, want %v", got, want)
			}
			if sub.Missed() != uint64(wantMissed) || r.Missed() != uint64(wantMissed) {
				t.Errorf("totals: sub %d, ring %d, want %d", sub.Missed(), r.Missed(), wantMissed)
			}
		})
	}
}

// TestLapOnlyHurtsTheLaggard: a subscriber that keeps up loses nothing while
// another one, which stops reading, loses exactly what fell off the ring.
func TestLapOnlyHurtsTheLaggard(t *testing.T) {
	t.Parallel()
	const size = 16
	r := newRing(t, fanout.Options{Size: size})
	fast, slow := subscribe(t, r), subscribe(t, r)

	var fastGot []string
	publishN(t, r, 1, 5)
	got, _ := readAll(slow) // slow reads the first 5, then stalls
	if !equal(got, seqStrings(1, 5)) {
		t.Fatalf("slow first read: %v", got)
	}
	for i := 6; i <= 100; i += 5 {
		publishN(t, r, i, 5)
		g, m := readAll(fast)
		if m != 0 {
			t.Fatalf("fast subscriber missed %d", m)
		}
		fastGot = append(fastGot, g...)
	}
	g, m := readAll(fast)
	fastGot = append(fastGot, g...)
	if m != 0 || !equal(fastGot, seqStrings(1, 100)) {
		t.Fatalf("fast: missed %d, got %v", m, fastGot)
	}
	got, missed := readAll(slow)
	if missed != 100-5-size {
		t.Errorf("slow missed: got %d, want %d", missed, 100-5-size)
	}
	if !equal(got, seqStrings(100-size+1, 100)) {
		t.Errorf("slow frames: got %v", got)
	}
}

// TestManyPublishersManySubscribers: every subscriber gets every frame
// exactly once, in sequence order, and each publisher's frames in the order it
// published them.
func TestManyPublishersManySubscribers(t *testing.T) {
	t.Parallel()
	const (
		publishers  = 8
		perProducer = 2000
		subscribers = 16
	)
	// Large enough that no subscriber can be lapped: this test is about order
	// and loss under concurrency, not about lapping.
	r := newRing(t, fanout.Options{Size: publishers * perProducer, Shards: 4})

	results := make(chan error, subscribers)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var ready sync.WaitGroup
	ready.Add(subscribers)
	for range subscribers {
		sub, err := r.Subscribe()
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			defer sub.Close()
			ready.Done()
			results <- consume(ctx, sub, publishers, perProducer)
		}()
	}
	ready.Wait()

	var wg sync.WaitGroup
	for p := range publishers {
		wg.Go(func() {
			for n := range perProducer {
				b := make([]byte, 8)
				binary.BigEndian.PutUint32(b[:4], uint32(p))
				binary.BigEndian.PutUint32(b[4:], uint32(n))
				if _, err := r.Publish("", b); err != nil {
					t.Errorf("Publish: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	for range subscribers {
		if err := <-results; err != nil {
			t.Error(err)
		}
	}
}

// consume reads frames until it has publishers*perProducer of them, checking
// sequence and per-publisher order, without loss.
func consume(ctx context.Context, sub *fanout.Subscriber, publishers, perProducer int) error {
	nextOf := make([]uint32, publishers)
	wantSeq := sub.Next()
	batch := make([]*fanout.Frame, 0, 64)
	for count := 0; count < publishers*perProducer; {
		var missed uint64
		batch, missed = sub.Read(batch[:0])
		if missed != 0 {
			return fmt.Errorf("missed %d frames", missed)
		}
		for _, f := range batch {
			if f.Seq() != wantSeq {
				return fmt.Errorf("seq %d, want %d", f.Seq(), wantSeq)
			}
			wantSeq++
			p := binary.BigEndian.Uint32(f.Bytes()[:4])
			n := binary.BigEndian.Uint32(f.Bytes()[4:])
			if n != nextOf[p] {
				return fmt.Errorf("publisher %d: frame %d, want %d", p, n, nextOf[p])
			}
			nextOf[p]++
			count++
		}
		if len(batch) == 0 {
			if err := sub.Wait(ctx, 0); err != nil {
				return fmt.Errorf("Wait after %d frames: %w", count, err)
			}
		}
	}
	return nil
}

// waitResult runs Wait in a goroutine and returns a channel with its result.
func waitResult(ctx context.Context, sub *fanout.Subscriber, timeout time.Duration) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- sub.Wait(ctx, timeout) }()
	return ch
}

func expectWait(t *testing.T, ch <-chan error, want error) {
	t.Helper()
	select {
	case err := <-ch:
		if !errors.Is(err, want) {
			t.Fatalf("Wait: got %v, want %v", err, want)
		}
	case <-time.After(waitFor):
		t.Fatalf("Wait did not return within %v (want %v)", waitFor, want)
	}
}

func TestWaitWakes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// act makes the waiting subscriber return; it runs once the
		// subscriber is (very likely) asleep, but must work either way.
		act  func(r *fanout.Ring, sub *fanout.Subscriber, cancel context.CancelFunc)
		want error
		// background: Wait without a context (the cheaper wait), which only
		// the other wake-ups can end.
		background bool
	}{
		{"publish", func(r *fanout.Ring, _ *fanout.Subscriber, _ context.CancelFunc) { _, _ = r.Publish("", []byte("x")) }, nil, false},
		{"close", func(r *fanout.Ring, _ *fanout.Subscriber, _ context.CancelFunc) { _ = r.Close() }, fanout.ErrClosed, false},
		{"cancel", func(_ *fanout.Ring, _ *fanout.Subscriber, cancel context.CancelFunc) { cancel() }, context.Canceled, false},
		{"interrupt", func(_ *fanout.Ring, sub *fanout.Subscriber, _ context.CancelFunc) { sub.Interrupt() }, fanout.ErrInterrupted, false},
		{"publish, no context", func(r *fanout.Ring, _ *fanout.Subscriber, _ context.CancelFunc) { _, _ = r.Publish("", []byte("x")) }, nil, true},
		{"close, no context", func(r *fanout.Ring, _ *fanout.Subscriber, _ context.CancelFunc) { _ = r.Close() }, fanout.ErrClosed, true},
		{"interrupt, no context", func(_ *fanout.Ring, sub *fanout.Subscriber, _ context.CancelFunc) { sub.Interrupt() }, fanout.ErrInterrupted, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newRing(t, fanout.Options{Size: 8, Shards: 2})
			sub := subscribe(t, r)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			waitCtx := ctx
			if tc.background {
				waitCtx = context.Background()
			}
			ch := waitResult(waitCtx, sub, time.Hour)
			time.Sleep(10 * time.Millisecond) // let it fall asleep; correctness does not depend on it
			tc.act(r, sub, cancel)
			expectWait(t, ch, tc.want)
		})
	}
}

// TestInterruptSticks: after Interrupt, every Wait returns ErrInterrupted at
// once, and Read still reads.
func TestInterruptSticks(t *testing.T) {
	t.Parallel()
	r := newRing(t, fanout.Options{Size: 8})
	sub := subscribe(t, r)
	sub.Interrupt()
	for range 2 {
		if err := sub.Wait(context.Background(), time.Hour); !errors.Is(err, fanout.ErrInterrupted) {
			t.Fatalf("Wait after Interrupt: %v", err)
		}
	}
	publishN(t, r, 1, 2)
	if got, _ := readAll(sub); !equal(got, seqStrings(1, 2)) {
		t.Fatalf("Read after Interrupt: %v", got)
	}
}

func TestWaitTimeout(t *testing.T) {
	t.Parallel()
	r := newRing(t, fanout.Options{Size: 8})
	sub := subscribe(t, r)
	for range 3 { // the timer is reused
		start := time.Now()
		if err := sub.Wait(context.Background(), 20*time.Millisecond); !errors.Is(err, fanout.ErrTimeout) {
			t.Fatalf("Wait: got %v, want ErrTimeout", err)
		}
		if d := time.Since(start); d < 20*time.Millisecond {
			t.Fatalf("Wait returned after %v, before its timeout", d)
		}
	}
	// After timeouts, a publish still wakes it.
	ch := waitResult(context.Background(), sub, time.Hour)
	publishN(t, r, 1, 1)
	expectWait(t, ch, nil)
}

func TestWaitReturnsAtOnceWhenReady(t *testing.T) {
	t.Parallel()
	r := newRing(t, fanout.Options{Size: 4})
	sub := subscribe(t, r)
	publishN(t, r, 1, 1)
	if err := sub.Wait(context.Background(), time.Nanosecond); err != nil {
		t.Fatalf("Wait with a frame ready: %v", err)
	}
	// A lapped subscriber is "ready" too: Read has a miss to report.
	publishN(t, r, 2, 10)
	if err := sub.Wait(context.Background(), time.Nanosecond); err != nil {
		t.Fatalf("Wait when lapped: %v", err)
	}
}

// TestCloseDrainsThenEnds: frames published before Close are still delivered;
// then Wait reports ErrClosed, and Publish refuses.
func TestCloseDrainsThenEnds(t *testing.T) {
	t.Parallel()
	r := newRing(t, fanout.Options{Size: 8})
	sub := subscribe(t, r)
	publishN(t, r, 1, 3)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := sub.Wait(context.Background(), 0); err != nil {
		t.Fatalf("Wait with frames left after Close: %v", err)
	}
	if got, _ := readAll(sub); !equal(got, seqStrings(1, 3)) {
		t.Fatalf("frames after Close: %v", got)
	}
	if err := sub.Wait(context.Background(), 0); !errors.Is(err, fanout.ErrClosed) {
		t.Fatalf("Wait after draining: got %v, want ErrClosed", err)
	}
	if _, err := r.Publish("", nil); !errors.Is(err, fanout.ErrClosed) {
		t.Fatalf("Publish after Close: got %v, want ErrClosed", err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	select {
	case <-r.Done():
	default:
		t.Fatal("Done not closed after Close")
	}
}

func TestSubscriberCount(t *testing.T) {
	t.Parallel()
	r := newRing(t, fanout.Options{Size: 8, Shards: 3})
	subs := make([]*fanout.Subscriber, 10)
	for i := range subs {
		subs[i] = subscribe(t, r)
	}
	if got := r.Subscribers(); got != 10 {
		t.Fatalf("Subscribers: got %d, want 10", got)
	}
	for _, s := range subs {
		_ = s.Close()
		_ = s.Close() // idempotent
	}
	if got := r.Subscribers(); got != 0 {
		t.Fatalf("Subscribers after Close: got %d, want 0", got)
	}
}

// TestSubscribersComeAndGo exercises sleeping, waking, timeouts and closing
// from many goroutines at once while publishers run; -race checks the rest.
func TestSubscribersComeAndGo(t *testing.T) {
	t.Parallel()
	r := newRing(t, fanout.Options{Size: 64, Shards: 4})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stop := make(chan struct{})
	var pubs sync.WaitGroup
	for range 2 {
		pubs.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, _ = r.Publish("", []byte("x"))
				time.Sleep(50 * time.Microsecond)
			}
		})
	}
	var subs sync.WaitGroup
	for i := range 200 {
		subs.Go(func() {
			sub, err := r.Subscribe()
			if err != nil {
				t.Errorf("Subscribe: %v", err)
				return
			}
			defer sub.Close()
			batch := make([]*fanout.Frame, 0, 16)
			for range 5 + i%7 {
				batch, _ = sub.Read(batch[:0])
				if err := sub.Wait(ctx, time.Duration(i%3)*time.Millisecond); err != nil &&
					!errors.Is(err, fanout.ErrTimeout) {
					t.Errorf("Wait: %v", err)
					return
				}
			}
		})
	}
	subs.Wait()
	close(stop)
	pubs.Wait()
	if got := r.Subscribers(); got != 0 {
		t.Fatalf("Subscribers: got %d, want 0", got)
	}
}
