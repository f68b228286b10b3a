package fanout_test

import (
	"fmt"
	"testing"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/fanout"
)

// bucketFilter is a benchmark filter: distinct by id, it keeps the events
// of one bucket (an event is its bucket's number, one byte).
type bucketFilter struct{ id, bucket int }

func (f bucketFilter) Key() string { return fmt.Sprintf("bucket:%d:%d", f.id, f.bucket) }

// buckets is a Matcher over bucket filters: it costs one lookup per event.
type buckets [][]int // bucket -> indexes of its filters, increasing

func (m buckets) Match(event []byte, _ uint64, dst []int) []int {
	return append(dst, m[event[0]]...)
}

// BenchmarkReadFiltered measures what one event costs, published and then
// read by every subscriber, when the subscribers have distinct filters each
// keeping one event in ten (filters=0: no filter, every subscriber takes
// every event). One goroutine does it all: this is the CPU of the ring's
// own work, publish, filter evaluation and Read, without scheduling.
func BenchmarkReadFiltered(b *testing.B) {
	const subs, nbuckets = 1000, 10
	for _, filters := range []int{0, 10, 1000} {
		b.Run(fmt.Sprintf("subs=%d/filters=%d", subs, filters), func(b *testing.B) {
			r := fanout.New(fanout.Options{Size: 1 << 12, Matcher: func(fs []fanout.Filter) fanout.Matcher {
				m := make(buckets, nbuckets)
				for i, f := range fs {
					bf := f.(bucketFilter) //nolint:forcetypeassert // only bucket filters here
					m[bf.bucket] = append(m[bf.bucket], i)
				}
				return m
			}})
			defer r.Close()
			all := make([]*fanout.Subscriber, subs)
			var err error
			for i := range all {
				var f fanout.Filter
				if filters > 0 {
					id := i % filters
					f = bucketFilter{id: id, bucket: id % nbuckets}
				}
				if all[i], err = r.SubscribeFilter(f, "t"); err != nil {
					b.Fatal(err)
				}
			}
			batch := make([]*fanout.Frame, 0, 64)
			event := []byte{0}
			n, read := 0, 0
			b.ReportAllocs()
			for b.Loop() {
				event[0] = byte(n % nbuckets)
				n++
				res, err := r.Reserve("t", 1)
				if err != nil {
					b.Fatal(err)
				}
				r.Commit(res, fanout.Message{Data: event, Event: event})
				for _, s := range all {
					batch, _ = s.Read(batch[:0])
					read += len(batch)
				}
			}
			b.ReportMetric(float64(read)/float64(n), "deliveries/event")
		})
	}
}
