//go:build linux

package hangup

import "golang.org/x/sys/unix"

// FailWaits makes the next n waits for events fail with EINVAL, as a broken
// epoll descriptor would, and returns a function that restores the real
// call. Not safe to use from parallel tests.
func FailWaits(n int) (restore func()) {
	orig := epollWait
	epollWait = func(epfd int, events []unix.EpollEvent, msec int) (int, error) {
		if n > 0 {
			n--
			return 0, unix.EINVAL
		}
		return orig(epfd, events, msec)
	}
	return func() { epollWait = orig }
}
