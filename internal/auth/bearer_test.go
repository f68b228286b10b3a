package auth_test

import (
	"testing"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/auth"
)

func TestBearer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"Bearer abc", "abc", true},
		{"bearer abc", "abc", true},
		{"BEARER abc", "abc", true},
		{"bEaReR\tabc", "abc", true},
		{"  Bearer   abc  ", "abc", true},
		{"Bearer a b", "a b", true},
		{"Bearer abc=", "abc=", true},
		{"", "", false},
		{"Bearer", "", false},
		{"Bearer ", "", false},
		{"Bearer \t ", "", false},
		{"Bearerabc", "", false},
		{"Basic YWJjOmRlZg==", "", false},
		{"Bearers abc", "", false},
		{"Beare abc", "", false},
		{"abc", "", false},
	} {
		got, ok := auth.Bearer([]byte(tc.in))
		if ok != tc.ok || string(got) != tc.want {
			t.Errorf("Bearer(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestBearerDoesNotAllocate(t *testing.T) {
	in := []byte("Bearer abc")
	if n := testing.AllocsPerRun(100, func() { _, _ = auth.Bearer(in) }); n != 0 {
		t.Errorf("Bearer allocates %v times, want 0", n)
	}
}
