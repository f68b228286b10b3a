package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/client"
	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/fanout"
	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/server"
)

// runService runs the service in-process on a loopback port, as a program
// that embeds it would, with the defaults changed by configure, and returns
// its URL and a function that stops it. The examples talk to it as to any
// instance of the service.
func runService(configure func(*server.Config)) (url string, stop func()) {
	cfg := server.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.DrainGrace = 100 * time.Millisecond // only the example's own connections to wait for
	if configure != nil {
		configure(&cfg)
	}
	ring := fanout.New(fanout.Options{Permanent: []string{server.DefaultTopic}})
	srv, err := server.New(&cfg, server.Deps{Ring: ring})
	if err != nil {
		panic(err)
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		panic(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Drain()
		_ = ring.Close()
		_ = srv.Shutdown(ctx)
		_ = <-served
	}
}

func ExampleClient_Subscribe() {
	url, stop := runService(func(cfg *server.Config) { cfg.IPField = "" })
	defer stop()
	ctx := context.Background()
	c := &client.Client{BaseURL: url}

	// Once Subscribe returns, every event published on the topics reaches
	// the subscription.
	sub, err := c.Subscribe(ctx, &client.SubscribeOptions{Topics: []string{"player"}})
	if err != nil {
		fmt.Println("subscribe:", err)
		return
	}
	defer sub.Close()

	_ = c.Publish(ctx, "player", "start", map[string]any{"title": "news"}, nil)
	_ = c.Publish(ctx, "ads", "", map[string]any{"skipped": true}, nil) // another topic
	_ = c.Publish(ctx, "player", "", json.RawMessage(`{"position":12}`), nil)

	for range 2 {
		ev, err := sub.Next(ctx)
		if err != nil {
			fmt.Println("next:", err)
			return
		}
		fmt.Printf("%s on %s: %s\n", ev.Type, ev.Topic, ev.Data)
	}

	// Later, maybe in another process: resume where the subscription left
	// off. Nothing published in between is lost.
	last := sub.LastEventID()
	_ = sub.Close()
	_ = c.Publish(ctx, "player", "stop", map[string]any{"position": 30}, nil)
	sub, err = c.Subscribe(ctx, &client.SubscribeOptions{Topics: []string{"player"}, LastEventID: last})
	if err != nil {
		fmt.Println("subscribe:", err)
		return
	}
	defer sub.Close()
	ev, _ := sub.Next(ctx)
	fmt.Printf("%s on %s: %s\n", ev.Type, ev.Topic, ev.Data)

	// When the service cannot resume exactly (here: an id from before it
	// restarted), it says so with a gap event rather than hiding the loss.
	sub, err = c.Subscribe(ctx, &client.SubscribeOptions{LastEventID: "r0ld-41"})
	if err != nil {
		fmt.Println("subscribe:", err)
		return
	}
	defer sub.Close()
	ev, _ = sub.Next(ctx)
	switch {
	case ev.Gap && ev.Missed == nil:
		fmt.Println("gap: some events were lost")
	case ev.Gap:
		fmt.Printf("gap: %d events were lost\n", *ev.Missed)
	}
	// Output:
	// start on player: {"title":"news"}
	// message on player: {"position":12}
	// stop on player: {"position":30}
	// gap: some events were lost
}

func ExampleClient_Publish() {
	url, stop := runService(func(cfg *server.Config) { cfg.PublishTokens = []string{"s3cret"} })
	defer stop()
	ctx := context.Background()

	listener := &client.Client{BaseURL: url}
	sub, err := listener.Subscribe(ctx, nil)
	if err != nil {
		fmt.Println("subscribe:", err)
		return
	}
	defer sub.Close()

	// Raw JSON is sent as it is: listeners get the producer's bytes (key
	// order, numbers, escapes) without the whitespace, and the producer's
	// address. Other values are encoded with encoding/json.
	producer := &client.Client{BaseURL: url, PublishToken: "s3cret"}
	body := []byte(`{ "title": "caf\u00e9", "position": 12345678901234567890 }`)
	opts := &client.PublishOptions{IdempotencyKey: "start-42"} // a retry with it is safe (NATS)
	if err := producer.Publish(ctx, "player", "start", body, opts); err != nil {
		fmt.Println("publish:", err)
		return
	}
	ev, _ := sub.Next(ctx)
	fmt.Printf("%s on %s: %s\n", ev.Type, ev.Topic, ev.Data)

	// Refusals are *client.Error values, matched with errors.Is.
	err = listener.Publish(ctx, "", "", map[string]int{"n": 1}, nil) // no publish token
	fmt.Println(errors.Is(err, client.ErrUnauthorized), client.IsRetryable(err))
	var e *client.Error
	if err := producer.Publish(ctx, "", "", []int{1, 2}, nil); errors.As(err, &e) {
		fmt.Println(e.StatusCode, errors.Is(err, client.ErrInvalid)) // e.Message says why
	}
	// Output:
	// start on player: {"title":"caf\u00e9","position":12345678901234567890,"user_ip":"127.0.0.1"}
	// true false
	// 400 true
}

func ExampleClient_PublishBatch() {
	url, stop := runService(func(cfg *server.Config) { cfg.IPField = "" })
	defer stop()
	ctx := context.Background()
	c := &client.Client{BaseURL: url}

	sub, err := c.Subscribe(ctx, &client.SubscribeOptions{Topics: []string{"scores"}})
	if err != nil {
		fmt.Println("subscribe:", err)
		return
	}
	defer sub.Close()

	// One request, one event a line; the events follow one another in the
	// stream, each with the batch's topic and name.
	events := []any{
		map[string]any{"team": "a", "goals": 1},
		json.RawMessage(`{"team": "b", "goals": 1}`),
		map[string]any{"team": "a", "goals": 2},
	}
	n, err := c.PublishBatch(ctx, "scores", "goal", events, nil)
	fmt.Println("accepted:", n, err)
	for range n {
		ev, _ := sub.Next(ctx)
		fmt.Printf("%s: %s\n", ev.Type, ev.Data)
	}

	// All or nothing: one bad event refuses the batch (the error's message
	// names its line).
	n, err = c.PublishBatch(ctx, "scores", "goal", []any{map[string]int{"ok": 1}, "not an object"}, nil)
	fmt.Println("accepted:", n, errors.Is(err, client.ErrInvalid))
	// Output:
	// accepted: 3 <nil>
	// goal: {"goals":1,"team":"a"}
	// goal: {"team":"b","goals":1}
	// goal: {"goals":2,"team":"a"}
	// accepted: 0 true
}
