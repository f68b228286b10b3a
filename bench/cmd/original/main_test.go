package main

import "testing"

func TestPortAddr(t *testing.T) {
	for in, want := range map[string]string{":8080": ":8080", "8080": ":8080", "127.0.0.1:9091": "127.0.0.1:9091", "[::1]:80": "[::1]:80"} {
		if got, err := portAddr(in); err != nil || got != want {
			t.Errorf("portAddr(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"x", ":99999", "a:b:c", ":"} {
		if got, err := portAddr(bad); err == nil {
			t.Errorf("portAddr(%q) = %q, want an error", bad, got)
		}
	}
}

func TestRunErrors(t *testing.T) {
	for _, args := range [][]string{{"-bogus"}, {"-port", "x"}, {"-addr", "256.0.0.1:1"}} {
		if err := run(args); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
	if err := run([]string{"-help"}); err != nil {
		t.Errorf("-help: %v", err)
	}
}
