package natsbridge_test

import (
	"testing"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/natsbridge"
	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/natstest"
)

// TestStatusDoesNotWaitForTheClient: while the client tries a server that
// accepts connections and never answers (it holds its own lock through each
// attempt), Status answers at once: /health, readiness and refused publishes
// depend on it.
func TestStatusDoesNotWaitForTheClient(t *testing.T) {
	t.Parallel()
	cfg := testConfig(natstest.Silent(t))
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
