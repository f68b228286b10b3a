package natstest_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/testutil"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/natstest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// connect opens a client connection that fails fast and closes at cleanup.
func connect(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func ctx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return c
}

// publishUntil publishes until it is acknowledged, as a client does while a
// server restarts or a cluster elects a leader.
func publishUntil(t *testing.T, js jetstream.JetStream, subject, data string) *jetstream.PubAck {
	t.Helper()
	var ack *jetstream.PubAck
	testutil.Poll(t, 15*time.Second, func() error {
		c, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		var err error
		ack, err = js.Publish(c, subject, []byte(data))
		return err
	})
	return ack
}

func TestServerRestartKeepsFileStream(t *testing.T) {
	s := natstest.RunServer(t)
	js := connect(t, s.URL())
	if _, err := js.CreateStream(ctx(t), jetstream.StreamConfig{
		Name: "FILE", Subjects: []string{"file.>"}, Storage: jetstream.FileStorage,
	}); err != nil {
		t.Fatal(err)
	}
	publishUntil(t, js, "file.a", "one")

	url := s.URL()
	s.Restart(t)
	if s.URL() != url {
		t.Fatalf("URL after restart = %s, want %s", s.URL(), url)
	}
	ack := publishUntil(t, js, "file.a", "two")
	if ack.Sequence != 2 {
		t.Fatalf("sequence after restart = %d, want 2 (the stream kept its message)", ack.Sequence)
	}
}

func TestServerRestartLosesMemoryStream(t *testing.T) {
	s := natstest.RunServer(t)
	js := connect(t, s.URL())
	if _, err := js.CreateStream(ctx(t), jetstream.StreamConfig{
		Name: "MEM", Subjects: []string{"mem.>"}, Storage: jetstream.MemoryStorage,
	}); err != nil {
		t.Fatal(err)
	}
	publishUntil(t, js, "mem.a", "one")
	s.Restart(t)
	testutil.Poll(t, 15*time.Second, func() error {
		_, err := js.Stream(ctx(t), "MEM")
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil
		}
		return fmt.Errorf("stream after restart: %w, want not found", err)
	})
}

func TestClusterReplicatedStreamSurvivesOneNode(t *testing.T) {
	c := natstest.RunCluster(t, 3)
	js := connect(t, c.URLs())
	if _, err := js.CreateStream(ctx(t), jetstream.StreamConfig{
		Name: "R3", Subjects: []string{"r3.>"}, Replicas: 3, Storage: jetstream.MemoryStorage,
	}); err != nil {
		t.Fatal(err)
	}
	publishUntil(t, js, "r3.a", "one")
	c.Servers[0].Shutdown()
	ack := publishUntil(t, js, "r3.a", "two")
	if ack.Sequence != 2 {
		t.Fatalf("sequence with a node down = %d, want 2", ack.Sequence)
	}
	c.Servers[0].Restart(t)
	c.WaitReady(t)
}

func TestBinary(t *testing.T) {
	p := natstest.RunBinary(t)
	if p.PID() == 0 {
		t.Fatal("PID = 0 for a running server")
	}
	js := connect(t, p.URL())
	if _, err := js.CreateStream(ctx(t), jetstream.StreamConfig{
		Name: "BIN", Subjects: []string{"bin.>"}, Storage: jetstream.FileStorage,
	}); err != nil {
		t.Fatalf("%v\n%s", err, p.Log())
	}
	publishUntil(t, js, "bin.a", "one")
	p.Kill(t)
	if p.PID() != 0 {
		t.Fatal("PID != 0 after Kill")
	}
	p.Restart(t)
	ack := publishUntil(t, js, "bin.a", "two")
	if ack.Sequence != 2 {
		t.Fatalf("sequence after kill and restart = %d, want 2", ack.Sequence)
	}
	p.Stop(t)
}
