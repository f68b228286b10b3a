// Package client is the Go client of the Pillarbox Event Dispatcher, a
// service that takes JSON events over HTTP POST and broadcasts them to
// listeners as Server-Sent Events.
//
// # Listening
//
// [Client.Subscribe] opens a [Subscription], whose [Subscription.Next]
// returns the events one at a time, in the service's order, each with its id,
// type and topic ([Event]). The subscription outlives the stream: when the
// service ends it (maximum age, shutdown), turns the listener away (full), or
// the network fails, it reconnects after the service's retry hint, backing
// off while attempts fail, and resumes after the last event it read, so that
// it loses nothing the service still holds. What cannot be resumed is not
// hidden: the service's gap event comes out of Next with [Event.Gap] set and
// the number of events lost in [Event.Missed] (nil when unknown). Keep
// [Subscription.LastEventID] to resume later, from another process even.
//
//	sub, err := c.Subscribe(ctx, &client.SubscribeOptions{Topics: []string{"player"}})
//	if err != nil {
//		return err // 401, 400, the service unreachable...
//	}
//	defer sub.Close()
//	for {
//		ev, err := sub.Next(ctx)
//		if err != nil {
//			return err // ctx done, or a refusal on a reconnection
//		}
//		if ev.Gap {
//			resync(ev.Missed) // events were lost here
//			continue
//		}
//		handle(ev.Type, ev.Topic, ev.Data)
//	}
//
// # Publishing
//
// [Client.Publish] posts one event, [Client.PublishBatch] an NDJSON batch,
// all or nothing; both on a topic, with an optional event name and
// Idempotency-Key ([PublishOptions]).
//
// # Errors
//
// The service's refusals are [*Error] values, with the HTTP status, the
// service's message, Retry-After, and for a batch stored part-way the count
// of events accepted. [errors.Is] matches them against the sentinels a
// caller branches on ([ErrInvalid], [ErrUnauthorized], [ErrTooLarge],
// [ErrConflict], [ErrUnavailable]), and [IsRetryable] says whether the same
// request may succeed later.
//
// # Reading streams
//
// [Reader] is the parser the subscription uses, for streams read some other
// way: it reads a Server-Sent Events stream as browsers do (the WHATWG HTML
// standard's event stream interpretation), with the service's "topic" field,
// and returns comments too if asked ([Reader.NextMessage]).
package client
