package natstest

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/testutil"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// BinaryCluster is a cluster of real nats-server processes joined by routes,
// for tests of what the service does when a node is stopped (SIGTERM) or
// killed (SIGKILL), which only a separate process can show.
type BinaryCluster struct {
	Nodes []*Process
}

// RunBinaryCluster starts n nats-server processes (RunBinary's rules: found
// on PATH or where `go install` puts it, skipped without it unless CI is
// set), each with JetStream, its own store and random loopback ports, routed
// to each other as cluster "natstest", and waits up to 15 s until JetStream
// answers through every node. Every node is killed by its PID at tb's
// cleanup.
func RunBinaryCluster(tb testing.TB, n int) *BinaryCluster {
	tb.Helper()
	cports := make([]int, n)
	routes := make([]string, n)
	for i := range cports {
		cports[i] = freePort(tb)
		routes[i] = "nats://127.0.0.1:" + strconv.Itoa(cports[i])
	}
	c := &BinaryCluster{}
	for i := range n {
		c.Nodes = append(c.Nodes, RunBinary(tb,
			"-n", fmt.Sprintf("natstest-b%d", i+1),
			"--cluster_name", "natstest",
			"--cluster", routes[i],
			"--routes", strings.Join(routes, ",")))
	}
	c.WaitReady(tb)
	return c
}

// Name is the server name of node i.
func (c *BinaryCluster) Name(i int) string { return fmt.Sprintf("natstest-b%d", i+1) }

// URLs lists every node's client URL, comma-separated.
func (c *BinaryCluster) URLs() string {
	urls := make([]string, len(c.Nodes))
	for i, p := range c.Nodes {
		urls[i] = p.URL()
	}
	return strings.Join(urls, ",")
}

// WaitReady waits up to 15 s until JetStream answers account info through
// every running node (the cluster has a meta leader and the node is part of
// it), and fails tb otherwise.
func (c *BinaryCluster) WaitReady(tb testing.TB) {
	tb.Helper()
	for _, p := range c.Nodes {
		if p.PID() == 0 {
			continue
		}
		testutil.Poll(tb, readyTimeout, func() error {
			nc, err := nats.Connect(p.URL(), nats.NoReconnect(), nats.Timeout(time.Second))
			if err != nil {
				return err
			}
			defer nc.Close()
			js, err := jetstream.New(nc)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_, err = js.AccountInfo(ctx)
			return err
		})
	}
}
