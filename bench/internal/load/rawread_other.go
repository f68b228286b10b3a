//go:build !unix

package load

import "net"

func (l *listener) readConn(conn net.Conn) error { return l.readPlain(conn) }
