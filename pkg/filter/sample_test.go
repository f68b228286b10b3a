package filter_test

import (
	"math"
	"testing"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/filter"
)

// TestSampledProportion checks that the proportion kept over 100k
// consecutive ids (and over ids with a stride, as a sharded id space would
// give) is close to the fraction. Sampled is pure, so the test is
// deterministic; the bound is 6 standard deviations, and 0.5% at least.
func TestSampledProportion(t *testing.T) {
	t.Parallel()
	const n = 100_000
	for _, stride := range []uint64{1, 2, 1 << 16, 1 << 32} {
		for _, f := range []float64{0.001, 0.01, 0.1, 0.25, 0.5, 0.9, 0.999} {
			kept := 0
			for i := range uint64(n) {
				if filter.Sampled(i*stride+7, f) {
					kept++
				}
			}
			got := float64(kept) / n
			tol := max(6*math.Sqrt(f*(1-f)/n), 0.005)
			if math.Abs(got-f) > tol {
				t.Errorf("stride %d, fraction %v: kept %.4f of %d ids (tolerance %.4f)", stride, f, got, n, tol)
			}
		}
	}
}

// TestSampledNested checks that a smaller fraction keeps a subset of what a
// larger one keeps.
func TestSampledNested(t *testing.T) {
	t.Parallel()
	fractions := []float64{1e-9, 0.001, 0.01, 0.1, 0.1000000001, 0.3, 0.5, 0.5000000000000001, 0.99, 1}
	for id := range uint64(20_000) {
		for i := 1; i < len(fractions); i++ {
			if filter.Sampled(id, fractions[i-1]) && !filter.Sampled(id, fractions[i]) {
				t.Fatalf("id %d: kept at %v, not at %v", id, fractions[i-1], fractions[i])
			}
		}
	}
}

// TestSampledBounds checks fraction 1 (and more) keeps every id, 0 (and
// less, and NaN) none.
func TestSampledBounds(t *testing.T) {
	t.Parallel()
	ids := make([]uint64, 0, 10_007)
	ids = append(ids, 0, 1, 2, 3, 1<<32, math.MaxUint64-1, math.MaxUint64)
	for id := range uint64(10_000) {
		ids = append(ids, id*0x9e3779b97f4a7c15)
	}
	for _, id := range ids {
		for _, f := range []float64{1, 1.5, math.Inf(1)} {
			if !filter.Sampled(id, f) {
				t.Fatalf("Sampled(%d, %v) = false", id, f)
			}
		}
		for _, f := range []float64{0, -0.5, math.Inf(-1), math.NaN()} {
			if filter.Sampled(id, f) {
				t.Fatalf("Sampled(%d, %v) = true", id, f)
			}
		}
	}
}

// TestSampledDeterministic pins the hash: it must not change from one
// process, version or machine to another, since several instances of the
// service must keep the same events. Id i is hashed to the i-th output of
// splitmix64 seeded with 0 (published values), and kept when that output,
// as a fraction of 2^64, is below the sample's fraction.
func TestSampledDeterministic(t *testing.T) {
	t.Parallel()
	splitmix64 := []uint64{
		0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4, 0x06c45d188009454f, 0xf88bb8a8724c81ec,
		0x1b39896a51a8749b, 0x53cb9f0c747ea2ea, 0x2c829abe1f4532e1, 0xc584133ac916ab3c,
	}
	for id, h := range splitmix64 {
		at := float64(h) / (1 << 64) // the fraction at which id starts being kept
		if filter.Sampled(uint64(id), at*(1-1e-12)) || !filter.Sampled(uint64(id), at*(1+1e-12)) {
			t.Errorf("id %d: not kept from fraction %v on (splitmix64 output %#x)", id, at, h)
		}
	}
}
