package clientip_test

import (
	"fmt"
	"net/netip"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/clientip"
)

// The client, behind a proxy on loopback, sent "X-Forwarded-For: 6.6.6.6"
// hoping to be taken for 6.6.6.6; the proxy appended the address it saw.
func ExampleResolver_Resolve() {
	proxies, err := clientip.ParseProxies("127.0.0.0/8, ::1")
	if err != nil {
		panic(err)
	}
	r := clientip.New(proxies)
	peer := netip.MustParseAddr("127.0.0.1")
	fmt.Println(r.Resolve(peer, [][]byte{[]byte("6.6.6.6, 203.0.113.50")}))
	fmt.Println(r.Resolve(netip.MustParseAddr("198.51.100.9"), [][]byte{[]byte("6.6.6.6")}))
	// Output:
	// 203.0.113.50
	// 198.51.100.9
}
