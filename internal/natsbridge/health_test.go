package natsbridge

import (
	"log/slog"
	"testing"
)

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

// TestPublishHealthGoesBySendTime: what decides between a success and a
// failure is when their requests were sent, not when their answers were
// read. A probe answered before a fault but read after it (a busy machine)
// must not hide the failures of publishes sent since: the bridge said ready
// while every POST was refused.
func TestPublishHealthGoesBySendTime(t *testing.T) {
	t.Parallel()
	b := &Bridge{log: slog.New(slog.DiscardHandler), server: "nats://127.0.0.1:4222", probeWake: make(chan struct{}, 1)}
	b.down.Store(newDown())
	b.canPublishNow(100) // a probe sent at 100, its answer read now
	if !b.publishable.Load() {
		t.Fatal("not publishable after a probe's success")
	}
	b.cannotPublish(50, "a publish sent before the probe", true)
	if !b.publishable.Load() {
		t.Fatal("a failure older than the probe's success counted")
	}
	b.cannotPublish(200, "a publish sent after the probe", true)
	if b.publishable.Load() {
		t.Fatal("a failure newer than the probe's success was ignored")
	}
	b.canPublishNow(150) // an answer to a probe sent before that failure
	if b.publishable.Load() {
		t.Fatal("a success older than the last failure made the bridge publishable")
	}
	b.canPublishNow(250)
	if !b.publishable.Load() {
		t.Fatal("not publishable after a probe sent after the failure succeeded")
	}
	b.canPublishNow(120) // older still: lastOK never goes back
	if b.lastOK.Load() != 250 {
		t.Fatalf("lastOK = %d after an older success, want 250", b.lastOK.Load())
	}
}
