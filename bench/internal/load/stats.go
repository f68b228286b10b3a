package load

import (
	"sort"
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Latencies are recorded in nanoseconds, from 1 ns to 2 minutes, with three
// significant digits.
const (
	histLowest  = 1
	histHighest = int64(2 * time.Minute)
	histSigFigs = 3
)

func newHist() *hdrhistogram.Histogram {
	return hdrhistogram.New(histLowest, histHighest, histSigFigs)
}

// recordClamped records v into h, clamping it to the trackable range.
func recordClamped(h *hdrhistogram.Histogram, v int64) {
	if v < 0 {
		v = 0
	}
	if v > histHighest {
		v = histHighest
	}
	_ = h.RecordValue(v)
}

// shardedHist spreads recordings from many goroutines over a few
// mutex-guarded histograms so that contention stays negligible and memory
// does not grow with the number of listeners.
type shardedHist struct {
	shards []histShard
}

type histShard struct {
	mu  sync.Mutex
	h   *hdrhistogram.Histogram
	max int64 // exact maximum (the histogram's is rounded)
	_   [40]byte
}

func newShardedHist(n int) *shardedHist {
	if n < 1 {
		n = 1
	}
	s := &shardedHist{shards: make([]histShard, n)}
	for i := range s.shards {
		s.shards[i].h = newHist()
	}
	return s
}

func (s *shardedHist) record(shard int, v int64) {
	sh := &s.shards[shard%len(s.shards)]
	sh.mu.Lock()
	recordClamped(sh.h, v)
	if v > sh.max {
		sh.max = v
	}
	sh.mu.Unlock()
}

func (s *shardedHist) reset() {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		sh.h.Reset()
		sh.max = 0
		sh.mu.Unlock()
	}
}

// merged returns one histogram holding every shard's values, and the exact
// maximum.
func (s *shardedHist) merged() (*hdrhistogram.Histogram, int64) {
	out := newHist()
	var hmax int64
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		out.Merge(sh.h)
		if sh.max > hmax {
			hmax = sh.max
		}
		sh.mu.Unlock()
	}
	return out, hmax
}

// Latency summarises a latency distribution, in microseconds.
type Latency struct {
	Count  int64   `json:"count"`
	MeanUs float64 `json:"mean_us"`
	P50Us  float64 `json:"p50_us"`
	P90Us  float64 `json:"p90_us"`
	P99Us  float64 `json:"p99_us"`
	P999Us float64 `json:"p999_us"`
	MaxUs  float64 `json:"max_us"`
}

// summarize computes the percentiles of h (values in ns). exactMax, when
// positive, replaces the histogram's rounded maximum.
func summarize(h *hdrhistogram.Histogram, exactMax int64) Latency {
	l := Latency{Count: h.TotalCount()}
	if l.Count == 0 {
		return l
	}
	us := func(ns int64) float64 { return float64(ns) / 1e3 }
	l.MeanUs = h.Mean() / 1e3
	l.P50Us = us(h.ValueAtQuantile(50))
	l.P90Us = us(h.ValueAtQuantile(90))
	l.P99Us = us(h.ValueAtQuantile(99))
	l.P999Us = us(h.ValueAtQuantile(99.9))
	l.MaxUs = us(h.Max())
	if exactMax > 0 {
		l.MaxUs = us(exactMax)
	}
	return l
}

// countStats returns min, median and max of counts (which it sorts).
func countStats(counts []int64) (lo, median, hi int64) {
	if len(counts) == 0 {
		return 0, 0, 0
	}
	sort.Slice(counts, func(i, j int) bool { return counts[i] < counts[j] })
	n := len(counts)
	median = counts[n/2]
	if n%2 == 0 {
		median = (counts[n/2-1] + counts[n/2]) / 2
	}
	return counts[0], median, counts[n-1]
}
