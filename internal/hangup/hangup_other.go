//go:build !linux

package hangup

import "net"

// Watcher is not implemented on this system: New returns ErrUnsupported.
type Watcher struct{}

// Registration identifies one watched connection.
type Registration struct{}

// New returns ErrUnsupported on this system.
func New() (*Watcher, error) { return nil, ErrUnsupported }

// Add returns ErrUnsupported.
func (*Watcher) Add(net.Conn, func()) (Registration, error) { return Registration{}, ErrUnsupported }

// Watch returns ErrUnsupported.
func (*Watcher) Watch(net.Conn, func()) (func(), error) { return nil, ErrUnsupported }

// Remove does nothing.
func (*Watcher) Remove(Registration) {}

// Len returns 0.
func (*Watcher) Len() int { return 0 }

// Errors returns 0.
func (*Watcher) Errors() uint64 { return 0 }

// Close does nothing.
func (*Watcher) Close() error { return nil }
