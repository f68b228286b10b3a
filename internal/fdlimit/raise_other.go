//go:build !linux && !darwin

package fdlimit

// Current returns zero Limits (unknown) and no error: descriptor limits
// are only read on Linux and macOS.
func Current() (Limits, error) { return Limits{}, nil }

// Raise does nothing and returns zero Limits (unknown) and no error:
// descriptor limits are only raised on Linux and macOS.
func Raise() (Limits, error) { return Limits{}, nil }
