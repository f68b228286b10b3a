package app_test

// Failover: a three-node NATS cluster (the real nats-server binary), the
// stream replicated on all three nodes, three instances each connected to
// one node; the node leading the stream is stopped (SIGTERM), then killed
// (SIGKILL). The test measures, and reports, how long JetStream took to elect
// another leader and how long each instance answered POSTs with 503, and
// checks what readiness said meanwhile.

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/natsbridge"
	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/natstest"
	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/sseclient"
)

// sample is one timed answer: a POST (status 0 for a transport error) or a
// readiness probe.
type sample struct {
	at     time.Time
	took   time.Duration
	status int
}

// timeline records the answers of one instance, from several goroutines.
type timeline struct {
	mu     sync.Mutex
	posts  []sample
	ready  []sample
	bodies []string // accepted POSTs, in order
}

func (tl *timeline) add(list *[]sample, s sample) {
	tl.mu.Lock()
	*list = append(*list, s)
	tl.mu.Unlock()
}

// watch posts an event to in every pace, and probes /health/ready every
// 50 ms, until stop is closed.
func (tl *timeline) watch(in *instance, name string, pace time.Duration, stop <-chan struct{}, wg *sync.WaitGroup) {
	client := func() *http.Client {
		tr := &http.Transport{}
		return &http.Client{Transport: tr, Timeout: wait}
	}
	run := func(every time.Duration, f func(c *http.Client, i int)) {
		defer wg.Done()
		c := client()
		defer c.Transport.(*http.Transport).CloseIdleConnections()
		t := time.NewTicker(every)
		defer t.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			f(c, i)
		}
	}
	wg.Add(2)
	go run(pace, func(c *http.Client, i int) {
		body := event(name, i)
		inst := *in
		inst.client = c
		began := time.Now()
		a, err := inst.do(http.MethodPost, "/api/events", body, nil)
		s := sample{at: began, took: time.Since(began), status: a.status}
		if err != nil {
			s.status = 0
		}
		tl.mu.Lock()
		tl.posts = append(tl.posts, s)
		if s.status == http.StatusOK {
			tl.bodies = append(tl.bodies, body)
		}
		tl.mu.Unlock()
	})
	go run(50*time.Millisecond, func(c *http.Client, _ int) {
		inst := *in
		inst.client = c
		began := time.Now()
		a, err := inst.do(http.MethodGet, "/health/ready", "", nil)
		s := sample{at: began, took: time.Since(began), status: a.status}
		if err != nil {
			s.status = 0
		}
		tl.add(&tl.ready, s)
	})
}

// outage is what one instance saw of a fault.
type outage struct {
	window   time.Duration // from the fault to the end of the last refused POST; 0: none refused
	slowest  time.Duration // the longest POST answered after the fault
	refused  int
	notReady bool // readiness said 503 while every POST was refused at once
	readyMid bool // readiness said 200 then
}

// since sums up what the timeline shows after the fault at t0, up to now.
func (tl *timeline) since(t0 time.Time) outage {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	var o outage
	var lastFail time.Time
	for _, p := range tl.posts {
		if p.at.Before(t0) && p.at.Add(p.took).Before(t0) {
			continue
		}
		o.slowest = max(o.slowest, p.took)
		if p.status != http.StatusOK {
			o.refused++
			if end := p.at.Add(p.took); end.After(lastFail) {
				lastFail = end
			}
		}
	}
	if o.refused == 0 {
		return o
	}
	o.window = lastFail.Sub(t0)
	// Readiness while the instance refused every POST at once (a POST
	// waiting for an acknowledgement that never comes says nothing of the
	// stream until it times out): in every stretch of a second or more of
	// quick refusals, the probes from half a second in must say 503.
	var from, to time.Time
	check := func() {
		if from.IsZero() || to.Sub(from) < time.Second {
			return
		}
		for _, r := range tl.ready {
			if r.at.Before(from.Add(500*time.Millisecond)) || r.at.After(to) {
				continue
			}
			switch r.status {
			case http.StatusServiceUnavailable:
				o.notReady = true
			case http.StatusOK:
				o.readyMid = true
			}
		}
	}
	for _, p := range tl.posts {
		if p.at.Before(t0) {
			continue
		}
		if p.status == http.StatusOK || p.took > 500*time.Millisecond {
			check()
			from = time.Time{}
			continue
		}
		if from.IsZero() {
			from = p.at
		}
		to = p.at.Add(p.took)
	}
	check()
	return o
}

// readyAfter tells whether the last readiness probe said 200.
func (tl *timeline) readyNow() bool {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return len(tl.ready) > 0 && tl.ready[len(tl.ready)-1].status == http.StatusOK
}

// acceptedSince counts the POSTs accepted after t.
func (tl *timeline) acceptedSince(t time.Time) int {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	n := 0
	for _, p := range tl.posts {
		if p.status == http.StatusOK && p.at.After(t) {
			n++
		}
	}
	return n
}

// leaderOf asks node url (and only it) for the stream's leader, "" if the
// stream has none or the node does not answer within 250 ms.
func leaderOf(nc *nats.Conn) string {
	js, err := jetstream.New(nc)
	if err != nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 250*time.Millisecond)
	defer cancel()
	s, err := js.Stream(ctx, natsbridge.DefaultStream)
	if err != nil || s.CachedInfo().Cluster == nil {
		return ""
	}
	return s.CachedInfo().Cluster.Leader
}

// TestNATSClusterFailover: with a three-node cluster and -nats-replicas 3
// (file storage), stopping the node that leads the stream (SIGTERM), then
// killing the one that leads it next (SIGKILL), then killing a node that does
// not lead it, costs every instance at most a few seconds of 503 beyond the
// cluster's own election (about a second is expected; the bound is generous
// for a busy machine), no POST waits longer than the publish timeout,
// readiness says 503 while POSTs are refused and 200 once they are accepted
// again, and every accepted event reaches every listener once, in one order.
func TestNATSClusterFailover(t *testing.T) {
	t.Parallel()
	c := natstest.RunBinaryCluster(t, 3)
	in := make([]*instance, len(c.Nodes))
	for i, node := range c.Nodes {
		in[i] = startInstance(t, string(rune('a'+i)), node.URL(), "-nats-replicas", "3", "-nats-storage", "file")
	}
	ls := listenAll(t, in)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	tls := make([]*timeline, len(in))
	for i, inst := range in {
		tls[i] = &timeline{}
		tls[i].watch(inst, inst.name, 10*time.Millisecond, stop, &wg)
	}
	halt := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer halt()
	began := time.Now()
	poll(t, func() error {
		for i, tl := range tls {
			if n := tl.acceptedSince(began); n < 20 {
				return fmt.Errorf("instance %s: %d POSTs accepted", in[i].name, n)
			}
		}
		return nil
	})

	for _, f := range []struct {
		name   string
		leader bool // the node that leads the stream, or another one
		kill   bool // SIGKILL, or SIGTERM
	}{
		{"stop of the stream leader", true, false},
		{"kill of the stream leader", true, true},
		{"kill of a follower", false, true},
	} {
		fault := f.name
		leader := streamLeaderNode(t, c)
		victim := leader
		if !f.leader {
			victim = (leader + 1) % len(c.Nodes)
		}
		other := c.Nodes[(victim+2)%len(c.Nodes)] // asked for the leader: it lives on
		nc, err := nats.Connect(other.URL(), nats.NoReconnect())
		if err != nil {
			t.Fatal(err)
		}
		old := c.Name(leader)
		t0 := time.Now()
		if f.kill {
			c.Nodes[victim].Kill(t)
		} else {
			c.Nodes[victim].Stop(t)
		}
		var election time.Duration
		if f.leader {
			poll(t, func() error {
				if l := leaderOf(nc); l != "" && l != old {
					election = time.Since(t0)
					return nil
				}
				return fmt.Errorf("no new leader after the %s %s", fault, old)
			})
		}
		nc.Close()
		// Every instance accepts again for a while.
		recovered := t0.Add(election)
		poll(t, func() error {
			for i, tl := range tls {
				if n := tl.acceptedSince(recovered.Add(2 * time.Second)); n < 20 {
					return fmt.Errorf("instance %s: %d POSTs accepted 2 s after the election", in[i].name, n)
				}
			}
			return nil
		})
		for i, tl := range tls {
			o := tl.since(t0)
			connected := i == victim
			t.Logf("%s (%s): new leader elected in %v; instance %s (connected to it: %v): 503 for %v from the fault (%d POSTs refused), slowest POST %v, ready 503 while refused: %v",
				fault, c.Name(victim), election.Round(time.Millisecond), in[i].name, connected, o.window.Round(time.Millisecond),
				o.refused, o.slowest.Round(time.Millisecond), o.notReady)
			if beyond := o.window - election; beyond > 4*time.Second {
				t.Errorf("%s: instance %s answered 503 for %v beyond the election (%v)", fault, in[i].name, beyond, election)
			}
			if o.slowest > natsbridge.DefaultPublishTimeout+time.Second {
				t.Errorf("%s: instance %s: a POST took %v", fault, in[i].name, o.slowest)
			}
			if o.readyMid {
				t.Errorf("%s: instance %s said ready while every POST was refused", fault, in[i].name)
			}
			if o.refused > 100 && !o.notReady {
				t.Errorf("%s: instance %s refused %d POSTs and never said it was not ready", fault, in[i].name, o.refused)
			}
			if !tl.readyNow() {
				t.Errorf("%s: instance %s not ready after the recovery", fault, in[i].name)
			}
		}
		// The node comes back, and catches up, before the next fault.
		c.Nodes[victim].Restart(t)
		c.WaitReady(t)
		waitReplicasCurrent(t, c)
	}
	halt()

	var all []string
	for _, tl := range tls {
		all = append(all, tl.bodies...)
	}
	// Every accepted event reaches every listener (an event refused for
	// want of an acknowledgement may have been stored too: the stream may
	// hold more than was accepted).
	got := make([][]sseclient.Message, len(ls))
	for i, l := range ls {
		poll(t, func() error {
			got[i] = l.messages()
			have := make(map[string]bool, len(got[i]))
			for _, m := range got[i] {
				have[m.Data] = true
			}
			for _, b := range all {
				if !have[b] {
					return fmt.Errorf("listener on %s: accepted event %s not received (of %d events, the last %s)",
						l.name, b, len(got[i]), got[i][len(got[i])-1].ID)
				}
			}
			return nil
		})
		checkConsecutive(t, "listener on "+l.name, got[i], 1)
	}
	n := min(len(got[0]), len(got[1]), len(got[2]))
	for i := range got {
		got[i] = got[i][:n]
	}
	sameOrder(t, ls, got)
}

// streamLeaderNode returns the index of the node that leads the stream.
func streamLeaderNode(t *testing.T, c *natstest.BinaryCluster) int {
	t.Helper()
	nc, err := nats.Connect(c.URLs())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	leader := -1
	poll(t, func() error {
		name := leaderOf(nc)
		for i := range c.Nodes {
			if c.Name(i) == name {
				leader = i
				return nil
			}
		}
		return fmt.Errorf("stream leader %q is none of the nodes", name)
	})
	return leader
}

// waitReplicasCurrent waits until the stream has a leader and every other
// replica is current.
func waitReplicasCurrent(t *testing.T, c *natstest.BinaryCluster) {
	t.Helper()
	nc, err := nats.Connect(c.URLs())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	poll(t, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		s, err := js.Stream(ctx, natsbridge.DefaultStream)
		if err != nil {
			return err
		}
		cl := s.CachedInfo().Cluster
		if cl == nil || cl.Leader == "" || len(cl.Replicas) != len(c.Nodes)-1 {
			return fmt.Errorf("stream cluster %+v", cl)
		}
		for _, r := range cl.Replicas {
			if !r.Current || r.Offline {
				return fmt.Errorf("replica %s not current", r.Name)
			}
		}
		return nil
	})
}
