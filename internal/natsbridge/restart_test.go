package natsbridge_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/testutil"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/natsbridge"
	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/natstest"
)

// failFast is how quickly a publish must fail while NATS is down.
const failFast = time.Second

// load publishes from several goroutines until stopped, and records which
// payloads were acknowledged. Publishes may fail only with ErrUnavailable.
type load struct {
	stop  chan struct{}
	wg    sync.WaitGroup
	mu    sync.Mutex
	acked map[string]bool
	count atomic.Int64
	fails atomic.Int64
}

func startLoad(t *testing.T, bridges []*natsbridge.Bridge, perBridge int) *load {
	t.Helper()
	l := &load{stop: make(chan struct{}), acked: make(map[string]bool)}
	for bi, b := range bridges {
		for p := range perBridge {
			l.wg.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-l.stop:
						return
					default:
					}
					data := fmt.Sprintf(`{"b":%d,"p":%d,"i":%d}`, bi, p, i)
					m := natsbridge.Message{Topic: "load", MsgID: data, Data: []byte(data)}
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					_, err := b.Publish(ctx, m)
					cancel()
					switch {
					case err == nil:
						l.mu.Lock()
						l.acked[data] = true
						l.mu.Unlock()
						l.count.Add(1)
					case errors.Is(err, natsbridge.ErrUnavailable):
						l.fails.Add(1)
						time.Sleep(5 * time.Millisecond)
					default:
						t.Errorf("Publish: %v, want nil or ErrUnavailable", err)
						return
					}
				}
			})
		}
	}
	t.Cleanup(l.halt)
	return l
}

// waitMore waits until n more publishes were acknowledged.
func (l *load) waitMore(t *testing.T, n int64) {
	t.Helper()
	target := l.count.Load() + n
	testutil.Poll(t, wait, func() error {
		if got := l.count.Load(); got < target {
			return fmt.Errorf("%d acknowledged, want %d", got, target)
		}
		return nil
	})
}

func (l *load) halt() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// checkAllDelivered waits until rec received every acknowledged payload, and
// fails t if one came twice or the sequences are not consecutive from 1.
func (l *load) checkAllDelivered(t *testing.T, rec *recorder) []natsbridge.Delivery {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var got []natsbridge.Delivery
	testutil.Poll(t, wait, func() error {
		got = rec.deliveries()
		seen := make(map[string]bool, len(got))
		for _, d := range got {
			seen[string(d.Data)] = true
		}
		missing := 0
		for data := range l.acked {
			if !seen[data] {
				missing++
			}
		}
		if missing > 0 {
			return fmt.Errorf("%d of %d acknowledged messages not delivered", missing, len(l.acked))
		}
		return nil
	})
	seen := make(map[string]bool, len(got))
	for _, d := range got {
		if seen[string(d.Data)] {
			t.Fatalf("%s delivered twice", d.Data)
		}
		seen[string(d.Data)] = true
	}
	checkConsecutive(t, got, 1)
	return got
}

// checkFailsFast publishes while NATS is down.
func checkFailsFast(t *testing.T, b *natsbridge.Bridge) {
	t.Helper()
	testutil.Poll(t, wait, func() error {
		if b.Status().Connected {
			return errors.New("still connected")
		}
		return nil
	})
	start := time.Now()
	_, err := b.Publish(context.Background(), msg("down", 0))
	if !errors.Is(err, natsbridge.ErrUnavailable) {
		t.Fatalf("Publish while NATS is down: %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > failFast {
		t.Fatalf("Publish while NATS is down took %v", d)
	}
	if st := b.Status(); st.State == natsbridge.StateReady || st.Reason == "" {
		t.Fatalf("Status while NATS is down = %+v", st)
	}
}

// TestRestartFileStorage restarts NATS under load: nothing acknowledged is
// lost, and the consumer resumes without a gap or a duplicate.
func TestRestartFileStorage(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	cfg := testConfig(s.URL())
	cfg.Storage = natsbridge.StorageFile
	b, rec := startBridge(t, cfg)
	id := b.Status().Identity
	l := startLoad(t, []*natsbridge.Bridge{b}, 4)
	l.waitMore(t, 200)
	s.Shutdown()
	checkFailsFast(t, b)
	s.Restart(t)
	waitReady(t, b)
	l.waitMore(t, 200)
	l.halt()
	got := l.checkAllDelivered(t, rec)
	for _, d := range got {
		if !d.Identity.Equal(id) {
			t.Fatalf("seq %d from %v, want the one stream %v", d.Seq, d.Identity, id)
		}
	}
	if st := b.Stats(); st.Reconnects == 0 || st.Resets == 0 {
		t.Fatalf("Stats = %+v, want a reconnect and a reset", st)
	}
}

// TestRestartMemoryStorage restarts NATS: the stream kept in memory is gone,
// is created again by one of the two bridges, and both hand their handler the
// new identity from sequence 1.
func TestRestartMemoryStorage(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	b1, rec1 := startBridge(t, testConfig(s.URL()))
	b2, rec2 := startBridge(t, testConfig(s.URL()))
	for i := range 5 {
		publish(t, b1, msg("a", i))
	}
	rec1.waitLen(t, 5)
	rec2.waitLen(t, 5)
	old := b1.Status().Identity

	s.Restart(t)
	for i, b := range []*natsbridge.Bridge{b1, b2, b1} {
		testutil.Poll(t, wait, func() error {
			_, err := b.Publish(testCtx(t), msg("b", 5+i))
			return err
		})
	}
	for _, rec := range []*recorder{rec1, rec2} {
		got := rec.waitLen(t, 8)
		if len(got) != 8 {
			t.Fatalf("%d deliveries, want 8", len(got))
		}
		checkConsecutive(t, got[:5], 1)
		checkConsecutive(t, got[5:], 1)
		renewed := got[5].Identity
		for i, d := range got {
			want := old
			if i >= 5 {
				want = renewed
			}
			if !d.Identity.Equal(want) {
				t.Fatalf("delivery %d from %v, want %v", i, d.Identity, want)
			}
		}
		if renewed.Equal(old) || renewed.Stream != old.Stream || !renewed.Created.After(old.Created) {
			t.Fatalf("identity after the restart %v, before %v: want a later incarnation", renewed, old)
		}
	}
	if a, b := b1.Status().Identity, b2.Status().Identity; !a.Equal(b) {
		t.Fatalf("bridges read %v and %v, want one stream", a, b)
	}
}

// TestStartWhileNATSDown starts a bridge before its NATS server: Start
// returns within its timeout, publishes fail fast, and the bridge joins when
// the server comes.
func TestStartWhileNATSDown(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	s.Shutdown()
	cfg := testConfig(s.URL())
	cfg.StartTimeout = 500 * time.Millisecond
	start := time.Now()
	b, rec := startBridge(t, cfg)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Start took %v with NATS down", d)
	}
	if st := b.Status(); st.State != natsbridge.StateJoining || st.Connected || st.Reason == "" {
		t.Fatalf("Status with NATS down = %+v", st)
	}
	checkFailsFast(t, b)
	s.Restart(t)
	waitReady(t, b)
	publish(t, b, msg("a", 1))
	if got := rec.waitLen(t, 1); got[0].Seq != 1 {
		t.Fatalf("first delivery seq %d, want 1", got[0].Seq)
	}
}

// TestClusterNodeLoss runs two bridges on a three-node cluster with a stream
// replicated three times, and kills the stream's leader under load: nothing
// acknowledged is lost, and both bridges see one order.
func TestClusterNodeLoss(t *testing.T) {
	t.Parallel()
	c := natstest.RunCluster(t, 3)
	cfg := testConfig(c.URLs())
	cfg.Replicas = 3
	b1, rec1 := startBridge(t, cfg)
	b2, rec2 := startBridge(t, cfg)
	l := startLoad(t, []*natsbridge.Bridge{b1, b2}, 2)
	l.waitMore(t, 300)
	var leader *natstest.Server
	for _, s := range c.Servers {
		if s.Embedded().JetStreamIsStreamLeader("$G", cfg.Stream) {
			leader = s
		}
	}
	if leader == nil {
		t.Fatal("no stream leader")
	}
	leader.Shutdown()
	l.waitMore(t, 300)
	l.halt()
	got1 := l.checkAllDelivered(t, rec1)
	l.checkAllDelivered(t, rec2)
	got2 := rec2.waitLen(t, len(got1))
	for i := range got1 {
		if got1[i].Seq != got2[i].Seq || !bytes.Equal(got1[i].Data, got2[i].Data) {
			t.Fatalf("delivery %d: bridge 1 seq %d %s, bridge 2 seq %d %s", i, got1[i].Seq, got1[i].Data, got2[i].Seq, got2[i].Data)
		}
	}
	t.Logf("%d acknowledged, %d failed publishes while the leader changed", l.count.Load(), l.fails.Load())
}

// TestBinaryKilled runs the real nats-server binary with a file stream and
// kills it (SIGKILL) under load: nothing acknowledged is lost.
func TestBinaryKilled(t *testing.T) {
	t.Parallel()
	p := natstest.RunBinary(t)
	cfg := testConfig(p.URL())
	cfg.Storage = natsbridge.StorageFile
	b, rec := startBridge(t, cfg)
	l := startLoad(t, []*natsbridge.Bridge{b}, 4)
	l.waitMore(t, 200)
	p.Kill(t)
	checkFailsFast(t, b)
	p.Restart(t)
	waitReady(t, b)
	l.waitMore(t, 200)
	l.halt()
	l.checkAllDelivered(t, rec)
}

// TestClusterMemoryStreamLost restarts the node holding a stream kept in
// memory with one replica: JetStream creates it again, empty, with the same
// identity. The bridge reads it from sequence 1 again, and says so.
func TestClusterMemoryStreamLost(t *testing.T) {
	t.Parallel()
	c := natstest.RunCluster(t, 3)
	cfg := testConfig(c.URLs())
	b, rec := startBridge(t, cfg)
	for i := range 5 {
		publish(t, b, msg("a", i))
	}
	rec.waitLen(t, 5)
	id := b.Status().Identity
	var holder *natstest.Server
	for _, s := range c.Servers {
		if s.Embedded().JetStreamIsStreamLeader("$G", cfg.Stream) {
			holder = s
		}
	}
	if holder == nil {
		t.Fatal("no stream leader")
	}
	holder.Restart(t)
	c.WaitReady(t)
	for i := range 3 {
		testutil.Poll(t, wait, func() error {
			_, err := b.Publish(testCtx(t), msg("b", 5+i))
			return err
		})
	}
	got := rec.waitLen(t, 8)
	if len(got) != 8 {
		t.Fatalf("%d deliveries, want 8", len(got))
	}
	checkConsecutive(t, got[:5], 1)
	checkConsecutive(t, got[5:], 1)
	for i, d := range got {
		if !d.Identity.Equal(id) {
			t.Fatalf("delivery %d from %v, want the same identity %v", i, d.Identity, id)
		}
	}
	if st := b.Stats(); st.StreamResets != 1 {
		t.Fatalf("Stats.StreamResets = %d, want 1", st.StreamResets)
	}
}
