// Package hangup tells when the peer of a connection has gone away, without
// reading from or writing to the connection.
//
// A server that only writes to a connection (an event stream, say) learns that
// its client closed it at its next write, which may be a heartbeat many
// seconds away. A [Watcher] asks the operating system instead: one goroutine
// waits on every watched socket at once (epoll on Linux) for a hang-up, a
// reset or an error, and calls the function registered for it. On systems
// without support, [New] returns [ErrUnsupported] and callers fall back to
// noticing at the next write.
package hangup

import "errors"

// Sentinel errors.
var (
	// ErrUnsupported is returned by New on systems where watching is not
	// implemented, and by Add for connections that have no file descriptor
	// (in-memory pipes, for instance).
	ErrUnsupported = errors.New("hangup: not supported")
	// ErrClosed is returned by Add after Close.
	ErrClosed = errors.New("hangup: watcher closed")
)
