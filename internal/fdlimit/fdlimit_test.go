package fdlimit_test

import (
	"math"
	"testing"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/fdlimit"
)

func TestBudget(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		soft uint64
		want int
	}{
		{0, 0},
		{1, 1},
		{2, 1},
		{256, 128},
		{512, 256},
		{513, 257},
		{1024, 768},
		{2560, 2304},
		{2570, 2313},
		{10240, 9216},
		{65536, 58983},
		{1 << 20, 943719},
		{math.MaxUint64, math.MaxInt32},
	} {
		if got := fdlimit.Budget(tc.soft); got != tc.want {
			t.Errorf("Budget(%d) = %d, want %d", tc.soft, got, tc.want)
		}
	}
}

func TestBudgetLeavesTheReserve(t *testing.T) {
	t.Parallel()
	for soft := uint64(1); soft < 100_000; soft += 97 {
		b := uint64(fdlimit.Budget(soft))
		reserve := soft - b
		if b == 0 || b > soft {
			t.Fatalf("Budget(%d) = %d", soft, b)
		}
		if want := min(max(fdlimit.MinReserve, soft/10), soft/2); reserve != want {
			t.Fatalf("Budget(%d) keeps %d in reserve, want %d", soft, reserve, want)
		}
	}
}
