//go:build !unix

package load

// RaiseFileLimit is a no-op where there is no RLIMIT_NOFILE.
func RaiseFileLimit(need uint64) (uint64, error) { return need, nil }
