package fdlimit

// perProcessMax reports no cap beyond the hard limit: on Linux the kernel
// already keeps the hard limit within fs.nr_open.
func perProcessMax() (uint64, bool) { return 0, false }
