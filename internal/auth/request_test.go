package auth_test

import (
	"bufio"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/auth"
)

// readRequest parses a raw request head into req, as a server does.
func readRequest(tb testing.TB, req *fasthttp.Request, raw string) {
	tb.Helper()
	req.Reset()
	if err := req.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		tb.Fatalf("parsing %q: %v", raw, err)
	}
}

func head(target string, headers ...string) string {
	return "GET " + target + " HTTP/1.1\r\nHost: x\r\n" + strings.Join(append(headers, ""), "\r\n") + "\r\n"
}

func TestListenerToken(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, raw, want string
	}{
		{"none", head("/events"), ""},
		{"bearer", head("/events", "Authorization: Bearer hdr"), "hdr"},
		{"query", head("/events?token=qry"), "qry"},
		{"query among others", head("/events?a=1&token=qry&b=2"), "qry"},
		{"query percent-encoded", head("/events?token=a%2Bb%20c"), "a+b c"},
		{"query plus is space", head("/events?token=a+b"), "a b"},
		{"cookie", head("/events", "Cookie: other=1; dispatcher_token=ck"), "ck"},
		{"bearer wins over query and cookie", head("/events?token=qry", "Authorization: Bearer hdr", "Cookie: dispatcher_token=ck"), "hdr"},
		{"query wins over cookie", head("/events?token=qry", "Cookie: dispatcher_token=ck"), "qry"},
		{"other scheme falls through", head("/events?token=qry", "Authorization: Basic YTpi"), "qry"},
		{"empty bearer falls through", head("/events", "Authorization: Bearer ", "Cookie: dispatcher_token=ck"), "ck"},
		{"empty query falls through", head("/events?token=", "Cookie: dispatcher_token=ck"), "ck"},
		{"query name is case-sensitive", head("/events?TOKEN=qry"), ""},
		{"other cookie", head("/events", "Cookie: token=ck"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var req fasthttp.Request
			readRequest(t, &req, tc.raw)
			if got := string(auth.ListenerToken(&req)); got != tc.want {
				t.Errorf("ListenerToken = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestListenerTokenDoesNotAllocate reads a request into a reused
// fasthttp.Request, as a server does, and extracts the token from each of
// the three places.
func TestListenerTokenDoesNotAllocate(t *testing.T) {
	ts := parse(t, "hdr,qry,ck")
	for _, raw := range []string{
		head("/events", "Authorization: Bearer hdr"),
		head("/events?a=1&token=qry"),
		head("/events", "Cookie: a=1; dispatcher_token=ck"),
		head("/events"),
	} {
		var req fasthttp.Request
		src := strings.NewReader(raw)
		br := bufio.NewReader(src)
		var ok bool
		n := testing.AllocsPerRun(100, func() {
			src.Reset(raw)
			br.Reset(src)
			req.Reset()
			if err := req.Read(br); err != nil {
				t.Fatal(err)
			}
			ok = ts.Match(auth.ListenerToken(&req))
		})
		if want := raw != head("/events"); ok != want {
			t.Errorf("%q: Match = %v, want %v", raw, ok, want)
		}
		if n != 0 {
			t.Errorf("%q: reading and checking the token allocates %v times, want 0", raw, n)
		}
	}
}
