//go:build !linux

package load

import (
	"net"
	"syscall"
)

var bindNoPort func(network, address string, c syscall.RawConn) error

func peerClosed(net.Conn) (closed, known bool) { return false, false }
