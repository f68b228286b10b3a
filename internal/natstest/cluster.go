package natstest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/testutil"

	"github.com/nats-io/nats-server/v2/server"
)

// Cluster is a set of embedded servers joined by routes into one JetStream
// cluster, so streams can be replicated (R3 with three servers).
type Cluster struct {
	Servers []*Server
}

// RunCluster starts n embedded servers (n >= 1) on random loopback ports, each
// with its own temporary store, routed to each other as cluster "natstest",
// and waits until JetStream has a meta leader and every server is current.
// Everything is stopped at tb's cleanup.
func RunCluster(tb testing.TB, n int, opts ...Option) *Cluster {
	tb.Helper()
	if n < 1 {
		tb.Fatalf("natstest: cluster of %d servers", n)
	}
	// Every server lists every route, its own included (the server ignores
	// it), so route ports are chosen before any server starts.
	ports := make([]int, n)
	routes := make([]string, n)
	for i := range ports {
		ports[i] = freePort(tb)
		routes[i] = fmt.Sprintf("nats://127.0.0.1:%d", ports[i])
	}
	c := &Cluster{}
	for i := range n {
		o := baseOptions(fmt.Sprintf("natstest-%d", i+1), tb.TempDir())
		o.Cluster = server.ClusterOpts{Name: "natstest", Host: "127.0.0.1", Port: ports[i]}
		o.Routes = server.RoutesFromStr(strings.Join(routes, ","))
		for _, opt := range opts {
			opt(&o)
		}
		s := &Server{opts: o, dir: o.StoreDir}
		tb.Cleanup(s.Shutdown)
		s.start(tb)
		c.Servers = append(c.Servers, s)
	}
	c.WaitReady(tb)
	return c
}

// URLs lists the client URLs of every server, comma-separated, running or not.
func (c *Cluster) URLs() string {
	urls := make([]string, len(c.Servers))
	for i, s := range c.Servers {
		urls[i] = s.URL()
	}
	return strings.Join(urls, ",")
}

// WaitReady waits up to 15 s until the running servers have one JetStream
// meta leader, all of them are current with it, and the leader sees all of
// them online (so streams can be placed on them), and fails tb otherwise.
func (c *Cluster) WaitReady(tb testing.TB) {
	tb.Helper()
	testutil.Poll(tb, readyTimeout, func() error {
		var leaders []*Server
		running := 0
		for _, s := range c.Servers {
			if !s.Running() {
				continue
			}
			running++
			if s.srv.JetStreamIsLeader() {
				leaders = append(leaders, s)
			}
			if !s.srv.JetStreamIsCurrent() {
				return fmt.Errorf("%s not current", s)
			}
		}
		if len(leaders) != 1 {
			return fmt.Errorf("%d meta leaders", len(leaders))
		}
		if peers := leaders[0].srv.JetStreamClusterPeers(); len(peers) != running {
			return fmt.Errorf("meta leader sees %d peers online (%v), %d running", len(peers), peers, running)
		}
		return nil
	})
}
