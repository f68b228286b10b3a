//go:build linux

package load

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// bindNoPort sets IP_BIND_ADDRESS_NO_PORT on sockets bound to an explicit
// source address, so that the kernel picks the source port at connect time
// and may reuse it towards different destinations.
func bindNoPort(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
	})
	if err != nil {
		return err
	}
	return serr
}

// peerClosed reports whether the peer has closed or reset the connection,
// without reading from it (slow listeners never read, so a FIN or RST from
// the server is only visible in the TCP state).
func peerClosed(c net.Conn) (closed, known bool) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false, false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false, false
	}
	var info *unix.TCPInfo
	var ierr error
	if err := rc.Control(func(fd uintptr) {
		info, ierr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); err != nil || ierr != nil {
		return false, false
	}
	switch info.State {
	case unix.BPF_TCP_ESTABLISHED:
		return false, true
	default: // CLOSE_WAIT (FIN received), CLOSE (RST), …
		return true, true
	}
}
