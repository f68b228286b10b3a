package natsbridge_test

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/natsbridge"
)

// TestStatusDoesNotWaitForTheClient: while the client tries a server that
// accepts connections and never answers (it holds its own lock through each
// attempt), Status answers at once: /health, readiness and refused publishes
// depend on it.
func TestStatusDoesNotWaitForTheClient(t *testing.T) {
	t.Parallel()
	cfg := testConfig(silentServer(t))
	cfg.StartTimeout = 100 * time.Millisecond
	b, _ := startBridge(t, cfg)
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); {
		asked := time.Now()
		st := b.Status()
		if took := time.Since(asked); took > 500*time.Millisecond {
			t.Fatalf("Status took %v", took)
		}
		if st.State == natsbridge.StateReady || st.Connected {
			t.Fatalf("Status %+v against a silent server", st)
		}
		time.Sleep(10 * time.Millisecond) // pace the calls; not a wait for a condition
	}
}

// silentServer listens on loopback, accepts connections and never writes; it
// returns its address and closes everything at t's cleanup.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return ln.Addr().String()
}
