// Package client is the Go client of the Pillarbox Event Dispatcher: it
// reads the service's Server-Sent Events streams.
//
// [Reader] parses a Server-Sent Events stream as browsers do (the WHATWG
// HTML standard's event stream interpretation), with the service's "topic"
// field, and tells the service's gap events apart ([Event.Gap],
// [Event.Missed]).
package client
