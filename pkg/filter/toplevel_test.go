package filter_test

import (
	"testing"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/filter"
)

func TestTopLevelString(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		event, name string
		want        string
		ok          bool
	}{
		{player, "type", "error", true},
		{player, "user_ip", "1.2.3.4", true},
		{player, "code", "", false},     // a number
		{player, "ok", "", false},       // false
		{player, "media", "", false},    // an object
		{player, "id", "", false},       // not top-level
		{player, "nope", "", false},     // missing
		{player, "Type", "", false},     // case-sensitive
		{`{"t":null}`, "t", "", false},  // null
		{`{"t":["a"]}`, "t", "", false}, // an array
		{`{"t":""}`, "t", "", true},
		{`{"t":"a\"b\\c\/d\u00e9\ud83d\ude00"}`, "t", "a\"b\\c/dé😀", true},
		{`{"\u0074":"x"}`, "t", "x", true},
		{`{"t\u00e9":"x"}`, "té", "x", true},
		{`{"t\u00e9":"x"}`, "t", "", false},
		{`{"t\"":"x"}`, `t"`, "x", true},
		{`{"t":"a","t":"b"}`, "t", "b", true},
		{`{"t":"a","t":1}`, "t", "", false},
		{`{"t":1,"t":"a"}`, "t", "a", true},
		{`{"t":"a","\u0074":"b"}`, "t", "b", true},
		{`{"x":{"t":"no"},"t":"yes","y":[{"t":"no"}]}`, "t", "yes", true},
		{" {\n \"t\" : \"x\" \n} ", "t", "x", true},
		{`{"":"x"}`, "", "x", true},
		{`["t","x"]`, "t", "", false},
		{`"t"`, "t", "", false},
		{``, "t", "", false},
		{`{"t":"x"`, "t", "x", true}, // invalid, but the field was read: unspecified, pinned here
		{`{"t":"\uZZZZ"}`, "t", "", false},
	} {
		got, ok := filter.TopLevelString([]byte(tc.event), tc.name)
		if got != tc.want || ok != tc.ok {
			t.Errorf("TopLevelString(%s, %q) = %q, %v; want %q, %v", tc.event, tc.name, got, ok, tc.want, tc.ok)
		}
	}
}
