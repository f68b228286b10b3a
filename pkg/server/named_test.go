package server_test

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/server"
)

// TestNamedEvents: POST ?event=NAME gives the event's frame an "event: NAME"
// line, between its id and its data; events posted without it have none
// (their type is "message"); names combine with topics, whose "topic:" line
// comes after the name.
func TestNamedEvents(t *testing.T) {
	t.Parallel()
	ts := start(t, func(c *server.Config) { c.Heartbeat = time.Hour })
	all := ts.open(t, "")
	all.greeting(t)
	onA := ts.open(t, "topic=a")
	onA.greeting(t)
	names := []string{"play", "a", "A.b_c-9", "message", strings.Repeat("n", 64), "0"}
	for i, name := range names {
		ts.mustPostTo(t, "event="+url.QueryEscape(name)+"&topic=a", fmt.Sprintf(`{"n":%d}`, i))
		ts.mustPostTo(t, "", fmt.Sprintf(`{"plain":%d}`, i))
	}
	for i, name := range names {
		frame := regexp.MustCompile(fmt.Sprintf(`^id: r[0-9a-z]+-[0-9]+\nevent: %s\ntopic: a\ndata: \{"n":%d,"user_ip":"127\.0\.0\.1"\}\n\n$`,
			regexp.QuoteMeta(name), i))
		for _, s := range []*sseStream{all, onA} {
			if b := s.nextEvent(t); !frame.MatchString(b.raw) {
				t.Errorf("event %q: frame %q, want %s", name, b.raw, frame)
			}
		}
		plain := regexp.MustCompile(fmt.Sprintf(`^id: r[0-9a-z]+-[0-9]+\ndata: \{"plain":%d,`, i))
		if b := all.nextEvent(t); !plain.MatchString(b.raw) {
			t.Errorf("unnamed event: frame %q, want %s", b.raw, plain)
		}
	}
}

// TestEventNames: an event name that is not 1 to 64 characters from
// [A-Za-z0-9._-] is a 400 with a JSON error naming the parameter, and
// nothing is published. A line break in a name would otherwise let a
// producer write any field into every listener's stream.
func TestEventNames(t *testing.T) {
	t.Parallel()
	ts := start(t, func(c *server.Config) { c.Heartbeat = time.Hour })
	all := ts.open(t, "")
	all.greeting(t)
	for _, name := range []string{"", "a b", "a\nb", "a\rb", "a\n\ndata: forged", "a:b", "\u00e9", "a/b", "a\x00",
		strings.Repeat("n", 65)} {
		for _, ct := range []string{"application/json", "application/x-ndjson"} {
			r := ts.postTo(t, "event="+url.QueryEscape(name), ct, `{"n":1}`)
			checkError(t, r, http.StatusBadRequest, `"event"`)
		}
	}
	ts.mustPost(t, `{"last":true}`)
	if b := all.nextEvent(t); !strings.HasPrefix(b.data, `{"last":true,`) || b.event != "" {
		t.Fatalf("a refused event was published: %q", b.raw)
	}
}
