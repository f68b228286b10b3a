package load

import (
	"bytes"
	"strconv"
)

// Listener filters (Config.Filters, Config.Buckets): the service lets a
// listener ask for the events whose fields match, GET
// /events?where=<path>:<value>&where=… (several values on one path: any of
// them). To load that, every event carries a bucket,
//
//	"bucket":"<seq mod Buckets>"
//
// zero-padded to the width of Buckets-1 ("07" with 100 buckets), so that
// each producer's events go round the buckets and each bucket holds
// 1/Buckets of the events. Listener i gets filter j = i mod Filters, which
// accepts one bucket, j mod Buckets:
//
//	Filters <= Buckets:  ?where=bucket:<j mod Buckets>
//	Filters >  Buckets:  ?where=bucket:<j mod Buckets>&where=bucket:x<j>
//
// The second term, a value no event has (bucket values are digits), only
// makes each of the Filters filters distinct for the service (which shares
// one evaluation between listeners with the same filter) without changing
// what it accepts: every filter passes exactly 1/Buckets of the events. A
// filtered listener checks every data frame it receives against its filter
// (RunResult.Filter); one its filter rejects is an error of the server,
// counted apart: it is neither a delivery (it does not make up for a lost
// event) nor checked for order.

// BucketField is the event field the listeners' filters look at.
const BucketField = "bucket"

// DefaultBuckets is the number of buckets when Config.Filters is set
// without Config.Buckets: each filter passes 10 % of the events.
const DefaultBuckets = 10

// bucketWidth is how many digits a bucket value has with buckets buckets:
// those of buckets-1.
func bucketWidth(buckets int) int {
	return len(strconv.Itoa(max(buckets-1, 0)))
}

// putBucket writes b into dst, zero-padded on the left to len(dst) digits.
func putBucket(dst []byte, b uint64) {
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = byte('0' + b%10)
		b /= 10
	}
}

// bucketValue is bucket b as events carry it (without the quotes).
func bucketValue(b, buckets int) string {
	v := make([]byte, bucketWidth(buckets))
	putBucket(v, uint64(b))
	return string(v)
}

// listenerFilter is one listener's filter: what it asks the server for and
// what it accepts.
type listenerFilter struct {
	id     int    // which of the distinct filters: the listener's index mod Filters
	bucket int    // the one bucket it accepts: id mod Buckets
	value  []byte // that bucket as events carry it
	query  string // the query of the listener's GET, "?where=…"
}

// newListenerFilter returns the filter of listener idx (see the comment at
// the top of this file).
func newListenerFilter(idx, filters, buckets int) *listenerFilter {
	id := idx % filters
	f := &listenerFilter{id: id, bucket: id % buckets}
	v := bucketValue(f.bucket, buckets)
	f.value = []byte(v)
	// Digits, x and the colon need no escaping in a query (RFC 3986).
	f.query = "?where=" + BucketField + ":" + v
	if filters > buckets {
		f.query += "&where=" + BucketField + ":x" + strconv.Itoa(id)
	}
	return f
}

// FilterQuery returns the query string ("?where=…") sseload gives
// listener idx with filters distinct filters over buckets buckets, "" when
// filters is 0.
func FilterQuery(idx, filters, buckets int) string {
	if filters <= 0 {
		return ""
	}
	if buckets <= 0 {
		buckets = DefaultBuckets
	}
	return newListenerFilter(idx, filters, buckets).query
}

var bucketKey = []byte(`"` + BucketField + `"`)

// accepts reports whether an event (a data line's payload) passes the
// filter: its bucket field is a string equal to the filter's bucket. The
// field is found by substring search, which the bench's own events allow
// (no other key or value holds it); an event without it is not accepted.
func (f *listenerFilter) accepts(event []byte) bool {
	i := jsonValueStart(event, bucketKey)
	if i < 0 {
		return false
	}
	v, _, ok := stringAt(event, i)
	return ok && bytes.Equal(v, f.value)
}

// seqStep is the difference between the sequence numbers of two
// consecutive events of one producer that a listener receives: 1 without a
// filter, Buckets with one (a producer's events go round the buckets).
func (l *listener) seqStep() int64 {
	if l.filter == nil {
		return 1
	}
	return int64(l.e.cfg.Buckets)
}

// onEvent checks a data frame against the listener's filter (the whole
// run, warm-up included).
// The frame scanner calls it before onSample for the same frame.
func (l *listener) onEvent(p []byte) {
	l.filterChecked++
	l.rejectedLast = !l.filter.accepts(p)
	if !l.rejectedLast {
		return
	}
	l.filterRejected++
	if l.rejectedExample == nil {
		l.rejectedExample = append([]byte{}, p[:min(len(p), 200)]...)
	}
}

// FilterCheck is what the listeners' filters let through (runs with
// Config.Filters).
type FilterCheck struct {
	// Filters is the number of distinct filters the listeners had.
	Filters int `json:"filters"`
	// Checked is the data frames the healthy listeners checked against
	// their filter, over the whole run (warm-up included).
	Checked int64 `json:"checked"`
	// Rejected is how many of them their listener's filter rejects: events
	// the server should not have sent. Anything but 0 is an error.
	Rejected int64 `json:"should_have_been_rejected"`
	// Example is the first such frame's payload (at most 200 bytes).
	Example string `json:"example,omitempty"`
}

// filterResults sums the listeners' filter checks (nil without filters).
func (e *engine) filterResults() *FilterCheck {
	if e.cfg.Filters <= 0 {
		return nil
	}
	fc := &FilterCheck{Filters: min(e.cfg.Filters, len(e.listeners))}
	for _, l := range e.listeners {
		if l.slow {
			continue
		}
		fc.Checked += l.filterChecked
		fc.Rejected += l.filterRejected
		if fc.Example == "" && l.rejectedExample != nil {
			fc.Example = string(l.rejectedExample)
		}
	}
	return fc
}
