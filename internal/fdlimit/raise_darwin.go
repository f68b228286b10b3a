package fdlimit

import "golang.org/x/sys/unix"

// perProcessMax returns kern.maxfilesperproc: macOS refuses a soft limit
// above it, even when the hard limit is higher (often "unlimited").
func perProcessMax() (uint64, bool) {
	n, err := unix.SysctlUint32("kern.maxfilesperproc")
	if err != nil {
		return 0, false
	}
	return uint64(n), true
}
