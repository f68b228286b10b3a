// Package clientip finds the address of the client behind a chain of
// reverse proxies, in a way the client cannot influence.
//
// Each proxy that forwards a request appends the address it received the
// request from to the X-Forwarded-For header. Only the entries appended by
// proxies the service trusts are believed: a [Resolver] starts from the peer
// (the host that opened the TCP connection) and walks the header from the
// right, past every trusted proxy, and stops at the first address that is not
// one. Entries further left were written by the client or by hosts nobody
// vouches for, so they are never read. (Taking the leftmost entry, as many
// services do, lets any client choose its own address.)
//
// Addresses are returned unmapped (::ffff:192.0.2.1 is 192.0.2.1) and
// without zone, so they compare and print the same however they arrived.
package clientip

import "errors"

// Sentinel errors.
var (
	// ErrInvalidProxy is wrapped by the error ParseProxies returns for an
	// item that is not a CIDR or an IP address, an empty item, or "none"
	// beside other items. The message names the item and its position.
	ErrInvalidProxy = errors.New("clientip: invalid trusted proxy")
)
