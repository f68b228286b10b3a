package filter_test

import (
	"strings"
	"testing"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/filter"
)

// player is an event as the server stores it.
const player = `{"type":"error","media":{"id":"urn:rts:video:1","live":false},"code":404,"ok":false,"user_ip":"1.2.3.4"}`

// TestLocate checks the locator alone: the text a field is compared with,
// where it is, and the inputs on which it must not fail.
func TestLocate(t *testing.T) {
	t.Parallel()
	deep := strings.Repeat(`{"a":`, 10000) + `1` + strings.Repeat(`}`, 10000)
	for _, tc := range []struct {
		event string
		path  string
		want  string
		ok    bool
	}{
		{player, "media.id", "urn:rts:video:1", true},
		{player, "code", "404", true},
		{player, "ok", "false", true},
		{player, "media", "", false},
		{player, "media.nope", "", false},
		{`{"a":{"b":{"c":"x"}},"a":{"b":{"d":"y"}}}`, "a.b.c", "", false},
		{`{"a":{"b":{"c":"x"}},"a":{"b":{"d":"y"}}}`, "a.b.d", "y", true},
		{`{"a":{"b":{"c":"x"},"b":{"d":"y"}}}`, "a.b.c", "", false},
		{`{"a":{"b":{"c":"x"}},"z":{"b":{"c":"y"}}}`, "a.b.c", "x", true},
		{`{"s":"\ud83d\ude00\ud83d\u0041\udc00"}`, "s", "😀\uFFFDA\uFFFD", true},
		{`{"s":"\u00e9\b\f\n\r\t"}`, "s", "é\b\f\n\r\t", true},
		{`{"s":"` + strings.Repeat(`x\"`, 40) + `"}`, "s", strings.Repeat(`x"`, 40), true},
		{`{"k` + strings.Repeat("y", 40) + `":1}`, "k" + strings.Repeat("y", 40), "1", true},
		{deep, "a.a.a", "", false},
		// Invalid inputs: the answer is unspecified, but there is one.
		{`{"a":"\u12"}`, "a", "", false},
		{`{"a":"x`, "a", "", false},
		{`{"a"`, "a", "", false},
		{`{"a":`, "a", "", false},
		{`{"a":}`, "a", "", false},
		{`{"a":1 "b":2}`, "b", "", false},
		{`{"a":{"b":[}`, "a.b", "", false},
		{`{"a":"\`, "a", "", false},
		{`{`, "a", "", false},
		{`}`, "a", "", false},
	} {
		got, ok := filter.LocateText([]byte(tc.event), strings.Split(tc.path, ".")...)
		if got != tc.want || ok != tc.ok {
			t.Errorf("LocateText(%.60s, %q) = %q, %v; want %q, %v", tc.event, tc.path, got, ok, tc.want, tc.ok)
		}
	}
}
