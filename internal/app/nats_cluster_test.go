package app_test

import (
	"fmt"
	"testing"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/natsbridge"
	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/natstest"
	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/sseclient"
)

// TestNATSClusterLosesANode: three instances on a three-node NATS cluster,
// each connected to another node, the stream replicated on all three
// (-nats-replicas 3). The node leading the stream, and one instance's
// connection with it, is killed while producers post on every instance
// (several at a time, on their own connections): POSTs may be
// refused (503) while a new leader is elected, but every event accepted
// (200) reaches every listener, once, in one order, with consecutive ids.
func TestNATSClusterLosesANode(t *testing.T) {
	t.Parallel()
	c := natstest.RunCluster(t, 3)
	// Each instance is given one node and learns the others from it, so
	// that one of them surely loses its server with the leader.
	in := make([]*instance, len(c.Servers))
	for i, srv := range c.Servers {
		in[i] = startInstance(t, string(rune('a'+i)), srv.URL(), "-nats-replicas", "3")
	}
	ls := listenAll(t, in)
	ps := startProducers(in, 2, -1)
	ps.waitAccepted(t, 30)

	leader := streamLeader(t, c)
	leader.Shutdown()
	ps.waitAccepted(t, 30)
	ps.halt(t)
	t.Logf("killed %s; %d events accepted, %d refused", leader.Name(), ps.accepted(), ps.refused())

	got := make([][]sseclient.Message, len(ls))
	for i, l := range ls {
		got[i] = l.waitProducers(t, ps.all)
		checkConsecutive(t, "listener on "+l.name, got[i], 1)
	}
	sameOrder(t, ls, got)
}

// streamLeader returns the cluster's server that leads the stream.
func streamLeader(t *testing.T, c *natstest.Cluster) *natstest.Server {
	t.Helper()
	js := natsClient(t, c.URLs())
	var leader *natstest.Server
	poll(t, func() error {
		s, err := js.Stream(testCtx(t), natsbridge.DefaultStream)
		if err != nil {
			return err
		}
		info := s.CachedInfo()
		for _, srv := range c.Servers {
			if info.Cluster != nil && srv.Name() == info.Cluster.Leader {
				leader = srv
				return nil
			}
		}
		return fmt.Errorf("no stream leader among the servers: %+v", info.Cluster)
	})
	js.Conn().Close()
	return leader
}
