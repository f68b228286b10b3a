package filter

// Sampling keeps the events whose id falls, once hashed, below a threshold
// that grows with the fraction:
//
//	point(id) = splitmix64(id) >> 1          in [0, 2^63)
//	cut(f)    = floor(f * 2^63)              0 for f <= 0, 2^63 for f >= 1
//	kept      = point(id) < cut(f)
//
// The hash is the id-th output of the splitmix64 generator seeded with 0
// (its state steps by the golden-ratio gamma; its finalizer mixes every bit
// of the state into every bit of the output), so consecutive ids give
// well-spread points, and a proportion f of them is kept. Dropping the low
// bit makes 2^63, the cut that keeps every point, representable: f=1 keeps
// all. cut is monotonic in f, so a smaller fraction keeps a subset of what a
// larger one keeps. Nothing is seeded: every process agrees.

const (
	gamma = 0x9e3779b97f4a7c15 // splitmix64's increment: 2^64 divided by the golden ratio, odd
	mix1  = 0xbf58476d1ce4e5b9 // splitmix64's finalizer constants
	mix2  = 0x94d049bb133111eb
	// all is the cut of f=1, above every point.
	all = 1 << 63
)

// point returns the hash of an event id that sampling compares, in
// [0, 2^63).
func point(id uint64) uint64 {
	z := (id + 1) * gamma
	z = (z ^ z>>30) * mix1
	z = (z ^ z>>27) * mix2
	return (z ^ z>>31) >> 1
}

// cut returns the threshold of a fraction: the points below it are kept.
func cut(fraction float64) uint64 {
	switch {
	case !(fraction > 0): // also NaN
		return 0
	case fraction >= 1:
		return all
	}
	return uint64(fraction * all) // exact product, below 2^63: no overflow
}

// Sampled reports whether a sample of the given fraction keeps the event
// with that id. It is a pure function of its arguments: every process gives
// the same answer for the same id and fraction. Fractions nest: if
// f1 <= f2, every id kept at f1 is kept at f2. A fraction of 1 (or more)
// keeps every id, one of 0 (or less, or NaN) none; over many ids,
// consecutive or not, the proportion kept is close to the fraction.
//
// Sampled is safe for concurrent use and does not allocate.
func Sampled(id uint64, fraction float64) bool {
	return point(id) < cut(fraction)
}
