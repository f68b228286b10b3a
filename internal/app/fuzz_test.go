package app

import (
	"net"
	"strconv"
	"testing"
)

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"65536", "64KiB", "1MiB", "1 mb", "12k", "0", "-1", "9999999999", "KiB", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseSize(s)
		if err != nil {
			return
		}
		if n < 0 || n > 1<<31 {
			t.Fatalf("parseSize(%q) = %d", s, n)
		}
		if back, err := parseSize(strconv.Itoa(n)); err != nil || back != n {
			t.Fatalf("parseSize(%d) = %d, %v", n, back, err)
		}
	})
}

func FuzzParseAddr(f *testing.F) {
	for _, s := range []string{":8080", "8080", "127.0.0.1:8080", "[::1]:80", "host:port", "", ":", "1:2:3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		addr, err := parseAddr(s)
		if err != nil {
			return
		}
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatalf("parseAddr(%q) = %q, not host:port: %v", s, addr, err)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			t.Fatalf("parseAddr(%q) = %q: bad port", s, addr)
		}
	})
}

func TestParseSize(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int{"65536": 65536, "64KiB": 64 << 10, "64kib": 64 << 10, "1MiB": 1 << 20, "2 MB": 2 << 20, "8k": 8 << 10, "100b": 100} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "KiB", "-1", "1.5MiB", "1GiB", "lots", "99999999999"} {
		if got, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) = %d, want an error", in, got)
		}
	}
}

func TestParseAddr(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{":8080": ":8080", "8080": ":8080", "127.0.0.1:8080": "127.0.0.1:8080", "[::1]:9000": "[::1]:9000"} {
		if got, err := parseAddr(in); err != nil || got != want {
			t.Errorf("parseAddr(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "http", ":http", "65536", "1.2.3.4:99999", "::1"} {
		if got, err := parseAddr(in); err == nil {
			t.Errorf("parseAddr(%q) = %q, want an error", in, got)
		}
	}
}
