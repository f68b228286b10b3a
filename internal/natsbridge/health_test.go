package natsbridge

import "testing"

// TestProbeAnswer: a probe is answered by a leader when it is refused for
// the wrong last sequence; anything else means the stream cannot take
// publishes.
func TestProbeAnswer(t *testing.T) {
	t.Parallel()
	if err := probeAnswer([]byte(`{"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 0"}}`)); err != nil {
		t.Errorf("refusal by the leader: %v", err)
	}
	if err := probeAnswer([]byte(`{"error":{"code":503,"err_code":10008,"description":"JetStream system temporarily unavailable"}}`)); err == nil {
		t.Error("unavailable: nil")
	}
	if err := probeAnswer([]byte(`{}`)); err == nil {
		t.Error("empty answer: nil")
	}
}
