package client

import (
	"testing"
	"time"
)

// TestBackoff: the wait starts at the floor (the service's hint), doubles
// with each failure in a row but the first, stops at the ceiling, and its
// jitter never takes it below the floor nor above the ceiling.
func TestBackoff(t *testing.T) {
	t.Parallel()
	const ms = time.Millisecond
	low := func(int64) int64 { return 0 }
	high := func(n int64) int64 { return n - 1 }
	for _, tc := range []struct {
		name             string
		floor, ceil      time.Duration
		failures         int
		wantLow, wantTop time.Duration // with the least and the most jitter
	}{
		{"stream ended", 100 * ms, time.Second, 0, 100 * ms, 125 * ms},
		{"first failure", 100 * ms, time.Second, 1, 100 * ms, 125 * ms},
		{"second failure", 100 * ms, time.Second, 2, 200 * ms, 250 * ms},
		{"third failure", 100 * ms, time.Second, 3, 400 * ms, 500 * ms},
		{"near the ceiling", 100 * ms, time.Second, 4, 800 * ms, 800*ms + 200*ms},
		{"at the ceiling", 100 * ms, time.Second, 5, time.Second, 750 * ms},
		{"many failures", 100 * ms, time.Second, 1000, time.Second, 750 * ms},
		{"ceiling near the floor", 900 * ms, time.Second, 3, time.Second, 900 * ms},
		{"ceiling below the hint", 2 * time.Second, time.Second, 1, time.Second, time.Second},
		{"zero floor", 0, time.Second, 3, 0, 0},
	} {
		if got := backoff(tc.floor, tc.ceil, tc.failures, low); got != tc.wantLow {
			t.Errorf("%s, least jitter: got %v, want %v", tc.name, got, tc.wantLow)
		}
		if got := backoff(tc.floor, tc.ceil, tc.failures, high); got != tc.wantTop {
			t.Errorf("%s, most jitter: got %v, want %v", tc.name, got, tc.wantTop)
		}
	}
}
