// Package client is the Go client of the Pillarbox Event Dispatcher, a
// service that takes JSON events over HTTP POST and broadcasts them to
// listeners as Server-Sent Events.
//
// [Client] publishes events, one at a time ([Client.Publish]) or as an
// NDJSON batch ([Client.PublishBatch]); the service's refusals come back as
// an [*Error], which [errors.Is] matches against the sentinels ([ErrInvalid],
// [ErrUnauthorized], [ErrTooLarge], [ErrConflict], [ErrUnavailable]) and
// [IsRetryable] classifies.
//
// [Reader] parses a Server-Sent Events stream as browsers do (the WHATWG
// HTML standard's event stream interpretation), with the service's "topic"
// field, and tells the service's gap events apart ([Event.Gap],
// [Event.Missed]).
package client
