package topic_test

import (
	"strings"
	"testing"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/topic"
)

func TestValidPattern(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", topic.MaxLen)
	for _, tc := range []struct {
		p    string
		want bool
	}{
		{"a", true}, {"default", true}, {"player.start", true}, {"A-Z_0.9", true}, {long, true},
		{"*", true}, {">", true}, {"a.*", true}, {"*.a", true}, {"*.*", true}, {"a.>", true}, {"*.>", true},
		{"a.*.b.>", true}, {"a.*.*", true}, {"-", true}, {"_._", true},
		{"", false}, {long + "a", false}, {long[:62] + ".>", true}, {long[:63] + ".>", false},
		{".", false}, {".a", false}, {"a.", false}, {"a..b", false}, {"a b", false}, {"a/b", false},
		{"a*", false}, {"*a", false}, {"**", false}, {"a>", false}, {">>", false}, {">.a", false},
		{"a.>.b", false}, {">.>", false}, {"a.>.", false}, {"é", false}, {"a\x00", false},
		{"a,b", false}, {"*.", false}, {".>", false}, {"a:b", false}, {"a.%2A", false},
	} {
		if got := topic.ValidPattern(tc.p); got != tc.want {
			t.Errorf("ValidPattern(%q) = %v, want %v", tc.p, got, tc.want)
		}
	}
}

func TestMatch(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		pattern, topic string
		want           bool
	}{
		{"a", "a", true}, {"a", "b", false}, {"a", "a.b", false}, {"a.b", "a", false},
		{"player.start", "player.start", true}, {"player.start", "player.Start", false},
		{"*", "a", true}, {"*", "a.b", false}, {"*.*", "a.b", true}, {"*.*", "a", false}, {"*.*", "a.b.c", false},
		{"player.*", "player.1", true}, {"player.*", "player", false}, {"player.*", "player.1.x", false},
		{"player.*", "players.1", false}, {"*.start", "player.start", true}, {"*.start", "player.stop", false},
		{">", "a", true}, {">", "a.b.c", true},
		{"player.>", "player.1", true}, {"player.>", "player.1.start", true}, {"player.>", "player", false},
		{"player.>", "playerx.1", false}, {"player.*.>", "player.1", false}, {"player.*.>", "player.1.a.b", true},
		{"a.*.c", "a.b.c", true}, {"a.*.c", "a.b.d", false}, {"a.*.c", "a.c", false},
		// Invalid patterns and topics match nothing; a topic is not a pattern.
		{"a..b", "a..b", false}, {"a", "a.", false}, {"", "", false}, {"*", "*", false}, {">", ">", false},
		{"a.*", "a.*", false}, {"a.>", "a.>", false}, {"a>", "a>", false}, {">.a", "x.a", false},
		{"a", strings.Repeat("a", 65), false},
	} {
		if got := topic.Match(tc.pattern, tc.topic); got != tc.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tc.pattern, tc.topic, got, tc.want)
		}
	}
}

func TestValidAndIsPattern(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		s              string
		valid, pattern bool
	}{
		{"a", true, false}, {"video.play", true, false}, {"a-b_c.9", true, false},
		{"*", false, true}, {"a.*", false, true}, {">", false, true}, {"a.*.b.>", false, true},
		{"", false, false}, {"a..b", false, false}, {".a", false, false},
	} {
		if got := topic.Valid(tc.s); got != tc.valid {
			t.Errorf("Valid(%q) = %v, want %v", tc.s, got, tc.valid)
		}
		if topic.ValidPattern(tc.s) {
			if got := topic.IsPattern(tc.s); got != tc.pattern {
				t.Errorf("IsPattern(%q) = %v, want %v", tc.s, got, tc.pattern)
			}
		}
	}
}

func TestCovers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		granted []string
		req     string
		want    bool
	}{
		{[]string{"player.>"}, "player.*", true},
		{[]string{"player.>"}, "player.a.>", true},
		{[]string{"player.*"}, "player.a", true},
		{[]string{"player.*"}, "player.>", false},
		{[]string{">"}, "a.b.>", true},
		{[]string{"*"}, "a", true},
		{[]string{"*"}, ">", false},
		{[]string{"a.*", "b.*"}, "*.x", false},
		{[]string{"*.x", "*.*"}, "*.*", true},
	} {
		if got := topic.Covers(tc.granted, tc.req); got != tc.want {
			t.Errorf("Covers(%q, %q) = %v, want %v", tc.granted, tc.req, got, tc.want)
		}
	}
}

func TestMatchDoesNotAllocate(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() {
		_ = topic.Match("player.*.>", "player.1.start")
		_ = topic.ValidPattern("player.*.>")
		_ = topic.Valid("player.1")
		_ = topic.IsPattern("player.*.>")
	}); n != 0 {
		t.Errorf("Match, ValidPattern, Valid and IsPattern allocate %v times", n)
	}
}
