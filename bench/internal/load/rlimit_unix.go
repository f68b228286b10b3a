//go:build unix

package load

import (
	"fmt"
	"syscall"
)

// RaiseFileLimit makes sure the process may open at least need file
// descriptors, raising the soft limit (and, when permitted, the hard limit).
// It returns the resulting soft limit.
func RaiseFileLimit(need uint64) (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	if lim.Cur >= need {
		return lim.Cur, nil
	}
	want := lim
	if want.Max < need {
		want.Max = need
	}
	want.Cur = want.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err == nil {
		return want.Cur, nil
	}
	// Not allowed to raise the hard limit: take what it allows.
	want = lim
	want.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
		return lim.Cur, err
	}
	if want.Cur < need {
		return want.Cur, fmt.Errorf("open-file limit is %d (hard), %d needed: raise it with ulimit -n", want.Cur, need)
	}
	return want.Cur, nil
}
