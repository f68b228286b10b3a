// Package filter selects, for each listener of the service, the events it
// asked for: it compiles the query of GET /events?where=...&sample=... into a
// [Filter], and evaluates every live filter against an event in one pass with
// a [Set], at a cost that does not grow with the filters that do not match.
// The package knows nothing of HTTP or of the fan-out: an event is the bytes
// of a JSON object, an id is a number.
//
// # Where terms
//
// A where term is <path>:<value>. The path is a dot-separated list of object
// keys, from the top-level object down (type, media.id, user_ip). In a path,
// a backslash escapes the next character: a\.b is the single key "a.b",
// a\:b is "a:b", a\\b is `a\b`, and any other escaped character stands for
// itself (\x is x). The path ends at the first unescaped colon; everything
// after it, verbatim (colons included, no unescaping), is the value, which
// may be empty (it then matches the empty string). An empty path, an empty
// key (a..b, .a, a.) or a term without an unescaped colon is an error.
//
// An event's field matches a value when:
//   - the field is a JSON string whose content, unescaped, equals the value
//     byte for byte (case-sensitive);
//   - or the field is a number, true, false or null whose literal text,
//     exactly as written in the event, equals the value: code:404 matches
//     "code":404 and "code":"404" but not "code":404.0; ok:false matches
//     false and "false"; n:1e3 matches 1e3 but not 1000.
//
// Objects and arrays never match. Keys are compared after JSON unescaping
// ("\u0074ype" is the key type); a path descends only through objects (there
// is no array indexing); when a key appears more than once in one object,
// its last occurrence wins, as with encoding/json decoding into a map. An
// event without the field, or where a key on the way holds something else
// than an object, does not match.
//
// Terms on the same path are alternatives (any of them matches: or); terms
// on different paths must all match (and). Repeated terms are harmless.
//
// # Sample
//
// sample=<fraction>, a decimal number f with 0 < f <= 1, keeps a fixed subset
// of the events, a proportion f of them, chosen from the event's id alone:
// see [Sampled]. Every process keeps the same events for the same fraction,
// and the events kept at a fraction are kept at every larger one. A filter
// may have where terms, a sample, or both (and then an event must pass both).
//
// # Limits
//
// [Parse] refuses filters larger than its [Limits]: by default at most 16
// where terms, paths of at most 256 bytes and 16 keys, values of at most
// 1024 bytes ([DefaultLimits]). Its errors name the parameter, the term and
// the reason, to be shown to an HTTP client as they are, and wrap
// [ErrInvalid].
//
// # Evaluation
//
// A [Set] is built from the live filters each time they change and used by
// every goroutine for every event: [Set.Match] locates the fields that any
// of its filters needs in one pass over the event (guided by a tree of the
// paths, skipping the values no path needs), looks each field's text up in
// an index of the terms on that path, checks the other paths of the filters
// found there, and finds the sample-only filters that keep the event by
// binary search. Its cost does not grow with the filters an event does not
// concern. The event is never decoded into maps, and Match does not
// allocate once warm. [TopLevelString] reads one top-level string field, for the
// server's topic field.
//
// Events are expected as the server stores them: compact, valid UTF-8 JSON
// objects (whitespace is allowed too). Match and TopLevelString never panic
// or loop on any input, but their answer for an input that is not valid
// JSON is unspecified.
package filter
