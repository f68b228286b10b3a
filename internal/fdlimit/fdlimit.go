// Package fdlimit raises the process's limit on open file descriptors and
// derives from it how many listeners the service can hold.
//
// Every connection is a descriptor, and a process that reaches its soft
// RLIMIT_NOFILE cannot accept, dial or open anything more. The soft limit
// is often far below what the system allows (1024 on many Linux
// distributions, 256 on macOS), while the hard limit, which an unprivileged
// process may raise its soft limit to, is much higher. [Raise] lifts the soft
// limit to the hard one at start-up; [Budget] then tells how many
// long-lived listener connections fit, leaving room for everything else.
//
// Raise and Current work on Linux and macOS. Elsewhere they do nothing and
// return zero Limits, which [Budget] reads as "unknown".
package fdlimit

import (
	"errors"
	"math"
)

// Sentinel errors.
var (
	// ErrRead is wrapped, with the system's error, by Current and Raise
	// when the limit cannot be read.
	ErrRead = errors.New("fdlimit: cannot read RLIMIT_NOFILE")
	// ErrRaise is wrapped, with the system's error, by Raise when the
	// system refuses the new soft limit.
	ErrRaise = errors.New("fdlimit: cannot raise RLIMIT_NOFILE")
)

// Limits are a process's descriptor limits: Soft is the one enforced, Hard
// the most Soft may be raised to without privileges. Zero values mean
// unknown (a system where limits are not read). A value may be very large
// where the system reports no limit.
type Limits struct {
	Soft uint64
	Hard uint64
}

// MinReserve is the fewest descriptors [Budget] keeps out of the listener
// budget.
const MinReserve = 256

// Budget returns how many listener connections (one descriptor each) a
// process whose soft descriptor limit is soft can hold while keeping a
// reserve for everything else: producers' connections, the listening
// socket, the NATS connection, the hang-up watcher's poller, the runtime's
// own descriptors, and files opened for logs or diagnostics.
//
// The reserve is a tenth of the limit, at least [MinReserve], but never more
// than half the limit:
//
//	reserve = min(max(MinReserve, soft/10), soft/2)
//	budget  = soft - reserve
//
// So 1024 gives 768, 65536 gives 58983, 1048576 gives 943719, and 256 gives
// 128. Budget returns 0 only for soft == 0, an unknown limit, which callers
// should read as "no bound from descriptors", never as "no listener". The
// result is capped at math.MaxInt32.
func Budget(soft uint64) int {
	reserve := min(max(MinReserve, soft/10), soft/2)
	return int(min(soft-reserve, math.MaxInt32))
}
