//go:build linux || darwin

package fdlimit

import (
	"fmt"
	"syscall"
)

// Current returns the process's descriptor limits. It does not change them.
func Current() (Limits, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return Limits{}, fmt.Errorf("%w: %w", ErrRead, err)
	}
	return Limits{Soft: lim.Cur, Hard: lim.Max}, nil
}

// Raise lifts the soft descriptor limit to the hard limit (on macOS, to the
// kernel's per-process maximum, kern.maxfilesperproc, when that is lower)
// and returns the limits in force afterwards, read back from the system. A
// soft limit already at or above the target is left alone. Raise never
// lowers a limit.
//
// On error the returned Limits are those in force, unchanged, and the error
// wraps [ErrRead] or [ErrRaise] with the system's error.
//
// Raise changes the whole process; call it once, at start-up. Note that the
// Go runtime already lifts the soft limit to one below the hard limit when a
// program starts, and puts the original soft limit back in the processes it
// starts with os/exec (for programs that still use select(2)); once Raise
// has changed the limit (through syscall.Setrlimit), child processes inherit
// the raised limit instead.
func Raise() (Limits, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return Limits{}, fmt.Errorf("%w: %w", ErrRead, err)
	}
	target := lim.Max
	if most, ok := perProcessMax(); ok && most < target {
		target = most
	}
	if lim.Cur < target {
		want := syscall.Rlimit{Cur: target, Max: lim.Max}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
			return Limits{Soft: lim.Cur, Hard: lim.Max}, fmt.Errorf("%w to %d: %w", ErrRaise, target, err)
		}
	}
	return Current()
}
