package clientip_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/clientip"
)

func TestParseProxies(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, want string // want: the prefixes joined by ","
	}{
		{"", ""},
		{"  ", ""},
		{"none", ""},
		{" none ", ""},
		{"10.0.0.0/8", "10.0.0.0/8"},
		{"10.1.2.3/8", "10.0.0.0/8"},
		{"192.0.2.7", "192.0.2.7/32"},
		{"2001:db8::1", "2001:db8::1/128"},
		{"fe80::1%eth0", "fe80::1/128"},
		{"::ffff:192.0.2.7", "192.0.2.7/32"},
		{"::ffff:10.0.0.0/104", "10.0.0.0/8"},
		{"::ffff:0:0/95", "::fffe:0:0/95"},
		{"127.0.0.0/8, ::1 ,10.0.0.0/8", "127.0.0.0/8,::1/128,10.0.0.0/8"},
		{"0.0.0.0/0,::/0", "0.0.0.0/0,::/0"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			ps, err := clientip.ParseProxies(tc.in)
			if err != nil {
				t.Fatalf("ParseProxies(%q): %v", tc.in, err)
			}
			if ps == nil {
				t.Errorf("ParseProxies(%q) = nil, want a non-nil slice", tc.in)
			}
			got := make([]string, len(ps))
			for i, p := range ps {
				got[i] = p.String()
			}
			if g := strings.Join(got, ","); g != tc.want {
				t.Errorf("ParseProxies(%q) = %s, want %s", tc.in, g, tc.want)
			}
		})
	}
}

func TestParseProxiesErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		item int
		bad  string
	}{
		{"10.0.0.0/33", 1, "10.0.0.0/33"},
		{"10.0.0.0/8, example.com", 2, "example.com"},
		{"10.0.0.0/8,,192.168.0.0/16", 2, ""},
		{"10.0.0.0/8,", 2, ""},
		{",10.0.0.0/8", 1, ""},
		{"none,10.0.0.0/8", 1, "none"},
		{"10.0.0.0/8, none", 2, "none"},
		{"10.0.0.0/x", 1, "10.0.0.0/x"},
		{"fe80::/10%eth0", 1, "fe80::/10%eth0"},
		{"1.2.3.4:80", 1, "1.2.3.4:80"},
		{"*", 1, "*"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			ps, err := clientip.ParseProxies(tc.in)
			if !errors.Is(err, clientip.ErrInvalidProxy) {
				t.Fatalf("ParseProxies(%q) = %v, %v; want an error wrapping ErrInvalidProxy", tc.in, ps, err)
			}
			if ps != nil {
				t.Errorf("ParseProxies(%q) returned prefixes %v beside its error", tc.in, ps)
			}
			want := fmt.Sprintf("item %d %q", tc.item, tc.bad)
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name %s", err, want)
			}
		})
	}
}
