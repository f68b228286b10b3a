package load

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

func secs(s float64) string {
	return strconv.FormatFloat(s, 'f', -1, 64) + "s"
}

func kib(k int64) string {
	switch {
	case k >= 10<<20:
		return fmt.Sprintf("%.1f GiB", float64(k)/(1<<20))
	case k >= 10<<10:
		return fmt.Sprintf("%.1f MiB", float64(k)/(1<<10))
	default:
		return fmt.Sprintf("%d KiB", k)
	}
}

// FormatCount renders a count or rate with a k/M/G suffix.
func FormatCount(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 1e9:
		return trimZero(fmt.Sprintf("%.2f", v/1e9)) + "G"
	case a >= 1e6:
		return trimZero(fmt.Sprintf("%.2f", v/1e6)) + "M"
	case a >= 1e4:
		return trimZero(fmt.Sprintf("%.1f", v/1e3)) + "k"
	case a == math.Trunc(a):
		return strconv.FormatFloat(v, 'f', 0, 64)
	default:
		return trimZero(fmt.Sprintf("%.1f", v))
	}
}

func trimZero(s string) string {
	if strings.Contains(s, ".") {
		s = strings.TrimRight(s, "0")
		s = strings.TrimSuffix(s, ".")
	}
	return s
}

// FormatMicros renders a duration given in microseconds with a fitting unit.
func FormatMicros(us float64) string {
	switch {
	case us >= 1e6:
		return trimZero(fmt.Sprintf("%.2f", us/1e6)) + "s"
	case us >= 1e3:
		return trimZero(fmt.Sprintf("%.2f", us/1e3)) + "ms"
	default:
		return trimZero(fmt.Sprintf("%.1f", us)) + "µs"
	}
}
