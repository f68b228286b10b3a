package auth_test

import (
	"testing"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/auth"
)

func TestAppendRedactedURI(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, want string
	}{
		{"/events", "/events"},
		{"/events?", "/events?"},
		{"/events?token=s3cret", "/events?token=REDACTED"},
		{"/events?a=1&token=s3cret", "/events?a=1&token=REDACTED"},
		{"/events?token=s3cret&a=1", "/events?token=REDACTED&a=1"},
		{"/events?token=a&token=b", "/events?token=REDACTED&token=REDACTED"},
		{"/events?token=", "/events?token=REDACTED"},
		{"/events?token", "/events?token"},
		{"/events?token=a=b", "/events?token=REDACTED"},
		{"/events?%74oken=s3cret", "/events?%74oken=REDACTED"},
		{"/events?tok%65n=s3cret", "/events?tok%65n=REDACTED"},
		{"/events?%54%4F%4B%45%4E=s3cret", "/events?%54%4F%4B%45%4E=REDACTED"},
		{"/events?TOKEN=s3cret", "/events?TOKEN=REDACTED"},
		{"/events?token=s3%23cr#et&x=1", "/events?token=REDACTED&x=1"},
		{"/events?tokens=keep&xtoken=keep&tok+en=keep", "/events?tokens=keep&xtoken=keep&tok+en=keep"},
		{"/events?tok%=keep&%zzoken=keep&token%=keep", "/events?tok%=keep&%zzoken=keep&token%=keep"},
		{"/token=path/only", "/token=path/only"},
		{"http://host/events?x=1&token=s3cret", "http://host/events?x=1&token=REDACTED"},
		{"/a?b=1&&token=x&", "/a?b=1&&token=REDACTED&"},
	} {
		got := string(auth.AppendRedactedURI([]byte("prefix:"), []byte(tc.in)))
		if got != "prefix:"+tc.want {
			t.Errorf("AppendRedactedURI(%q) = %q, want %q", tc.in, got, "prefix:"+tc.want)
		}
		if got := auth.RedactedURI([]byte(tc.in)); got != tc.want {
			t.Errorf("RedactedURI(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestAppendRedactedURIDoesNotAllocate(t *testing.T) {
	uri := []byte("/events?a=1&%74oken=s3cret&b=2")
	dst := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(100, func() { _ = auth.AppendRedactedURI(dst[:0], uri) }); n != 0 {
		t.Errorf("AppendRedactedURI allocates %v times, want 0", n)
	}
}
