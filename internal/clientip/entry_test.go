package clientip_test

import (
	"net/netip"
	"testing"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/clientip"
)

func TestParseEntry(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		entry, want string // want "" means not an address
	}{
		{"192.0.2.1", "192.0.2.1"},
		{"  192.0.2.1\t", "192.0.2.1"},
		{"192.0.2.1:5678", "192.0.2.1"},
		{"192.0.2.1:0", "192.0.2.1"},
		{"192.0.2.1:065535", "192.0.2.1"},
		{"0.0.0.0", "0.0.0.0"},
		{"255.255.255.255", "255.255.255.255"},
		{"2001:db8::1", "2001:db8::1"},
		{"2001:DB8::1", "2001:db8::1"},
		{"[2001:db8::1]", "2001:db8::1"},
		{"[2001:db8::1]:443", "2001:db8::1"},
		{"::", "::"},
		{"::ffff:192.0.2.1", "192.0.2.1"},
		{"[::ffff:192.0.2.1]:80", "192.0.2.1"},
		{"::192.0.2.1", "::c000:201"},
		{"fe80::1%eth0", "fe80::1"},
		{"[fe80::1%eth0]:8080", "fe80::1"},
		{"ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},

		{"", ""},
		{"   ", ""},
		{"unknown", ""},
		{"_hidden", ""},
		{"192.0.2", ""},
		{"192.0.2.1.5", ""},
		{"192.0.2.256", ""},
		{"192.0.2.01", ""},
		{"1922.0.2.1", ""},
		{".192.0.2", ""},
		{"192..2.1", ""},
		{"192.0.2.1.", ""},
		{"192.0.2.1:", ""},
		{"192.0.2.1:65536", ""},
		{"192.0.2.1:http", ""},
		{"192.0.2.1:+80", ""},
		{"192.0.2.1%eth0", ""},
		{"[192.0.2.1]", ""},
		{"[192.0.2.1]:80", ""},
		{"[2001:db8::1", ""},
		{"[2001:db8::1]443", ""},
		{"[2001:db8::1]:", ""},
		{"[2001:db8::1]:99999", ""},
		{"fe80::1%", ""},
		{"1::2::3", ""},
		{"2001:db8::g", ""},
		{"2001:db8::1 ", "2001:db8::1"},
		{"2001: db8::1", ""},
		{"192.0.2.1 192.0.2.2", ""},
		{"for=192.0.2.1", ""},
		{"1:2:3:4:5:6:7:8:9", ""},
	} {
		got, ok := clientip.ParseEntry([]byte(tc.entry))
		if tc.want == "" {
			if ok {
				t.Errorf("ParseEntry(%q) = %v, true; want not an address", tc.entry, got)
			}
			continue
		}
		if !ok || got != netip.MustParseAddr(tc.want) {
			t.Errorf("ParseEntry(%q) = %v, %v; want %s, true", tc.entry, got, ok, tc.want)
		}
	}
}
