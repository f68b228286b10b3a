package natstest

import (
	"net"
	"sync"
	"testing"
)

// Silent listens on a random loopback port, accepts connections and never
// writes to them: a NATS server that hangs before its INFO line. It returns
// the nats:// URL and closes the listener and every accepted connection at the
// test's cleanup.
func Silent(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	tb.Cleanup(func() {
		_ = ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return "nats://" + ln.Addr().String()
}
