package filter_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/filter"
)

// benchEvent is a player event as the server stores it (compact, 317
// bytes).
var benchEvent = []byte(`{"type":"heartbeat","session":"5f1c2a9e-7b3d-4c8e-9a01-2f6b8d4e1c3a",` +
	`"timestamp":1733480000123,"media":{"id":"urn:rts:video:14270437","duration":3600.5,"position":1234.56,` +
	`"live":false},"player":{"name":"pillarbox-web","version":"1.14.2","platform":"web"},` +
	`"qos":{"bitrate":4500000,"stalls":0,"dropped":3},"user_ip":"203.0.113.42"}`)

// benchSizes are the numbers of filters the benchmarks sweep.
var benchSizes = []int{0, 1, 10, 100, 1000, 10000}

// benchSet benchmarks Set.Match on benchEvent with n filters made by
// filterFor, each event with the next id, and reports the indexes matched
// per event.
func benchSet(b *testing.B, filterFor func(i int) *filter.Filter) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("filters=%d", n), func(b *testing.B) {
			filters := make([]*filter.Filter, n)
			for i := range filters {
				filters[i] = filterFor(i)
			}
			s := filter.NewSet(filters)
			dst := make([]int, 0, n)
			id, matched := uint64(0), 0
			b.SetBytes(int64(len(benchEvent)))
			b.ReportAllocs()
			for b.Loop() {
				id++
				dst = s.Match(benchEvent, id, dst[:0])
				matched += len(dst)
			}
			b.ReportMetric(float64(matched)/float64(b.N), "matches/op")
		})
	}
}

// BenchmarkSetMatchOnePath: every filter on media.id, each with its own
// value; one of them matches the event.
func BenchmarkSetMatchOnePath(b *testing.B) {
	benchSet(b, func(i int) *filter.Filter {
		return mustParse(b, "", fmt.Sprintf("media.id:urn:rts:video:%d", 14270437+i))
	})
}

// BenchmarkSetMatchThreePaths: every filter on type (two values, one the
// event's), media.id (its own value, one of them the event's) and
// player.platform (the event's).
func BenchmarkSetMatchThreePaths(b *testing.B) {
	benchSet(b, func(i int) *filter.Filter {
		return mustParse(b, "", "type:heartbeat", "type:error",
			fmt.Sprintf("media.id:urn:rts:video:%d", 14270437+i), "player.platform:web")
	})
}

// BenchmarkSetMatchSampleOnly: every filter a sample of its own, from 0.01%
// to 1%: about 0.5% of them keep each event.
func BenchmarkSetMatchSampleOnly(b *testing.B) {
	benchSet(b, func(i int) *filter.Filter {
		return mustParse(b, fmt.Sprintf("%.6f", 0.0001+0.0099*float64(i%1000)/1000))
	})
}

// BenchmarkValidBaseline only validates benchEvent with encoding/json, for
// scale.
func BenchmarkValidBaseline(b *testing.B) {
	b.SetBytes(int64(len(benchEvent)))
	b.ReportAllocs()
	for b.Loop() {
		if !json.Valid(benchEvent) {
			b.Fatal("invalid")
		}
	}
}

// BenchmarkTopLevelString reads the event's type.
func BenchmarkTopLevelString(b *testing.B) {
	b.SetBytes(int64(len(benchEvent)))
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := filter.TopLevelString(benchEvent, "user_ip"); !ok {
			b.Fatal("no user_ip")
		}
	}
}
