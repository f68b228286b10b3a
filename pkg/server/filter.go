package server

import (
	"errors"

	"github.com/valyala/fasthttp"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/fanout"
	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/filter"
)

// Listener filters: GET /events?where=<path>:<value>&sample=<fraction> gives
// a listener only the events of its topics that match (package filter says
// how). The fan-out evaluates every live filter once per event, whatever the
// number of listeners (see fanout.Filter): the ring must be created with
// FilterMatcher.

// FilterMatcher compiles the ring's live listener filters into one set,
// evaluated once per event: give it to fanout.New as Options.Matcher, or
// listeners with a filter are turned away.
func FilterMatcher(filters []fanout.Filter) fanout.Matcher {
	list := make([]*filter.Filter, len(filters))
	for i, f := range filters {
		list[i], _ = f.(*filter.Filter) // another kind (none here) never matches
	}
	return eventNumbers{filter.NewSet(list)}
}

// eventNumbers gives a filter set the number of an event's id (what
// sampling chooses from) instead of its ring key: in a stream's id space
// the key is the stream's sequence number plus a base of this process's
// own (see idSpace), which must not change which events a fraction keeps
// from one instance to another.
type eventNumbers struct{ set *filter.Set }

func (m eventNumbers) Match(event []byte, key uint64, dst []int) []int {
	return m.set.Match(event, eventNumber(key), dst)
}

// Errors for sample parameters package filter does not see.
var (
	errSampleTwice = errors.New(`one "sample" parameter per listener`)
	errSampleEmpty = errors.New(`sample "": must be a number greater than 0 and at most 1`)
)

// filterParams returns a listener's filter from its "where" and "sample"
// parameters, nil if it has neither, or an error naming the parameter.
func filterParams(args *fasthttp.Args, lim filter.Limits) (*filter.Filter, error) {
	values := args.PeekMulti("where")
	var where []string
	if len(values) > 0 {
		where = make([]string, len(values))
		for i, v := range values {
			where[i] = string(v)
		}
	}
	var sample string
	switch samples := args.PeekMulti("sample"); len(samples) {
	case 0:
	case 1:
		if sample = string(samples[0]); sample == "" {
			return nil, errSampleEmpty // not "no sample": a malformed one
		}
	default:
		return nil, errSampleTwice
	}
	return filter.Parse(where, sample, lim)
}
