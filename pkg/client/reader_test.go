package client_test

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/client"
)

// got is a Message in a form tests compare and print: "event" lines show the
// type, topic, id, data and, for a gap, the count; "comment" lines the text.
func got(m client.Message) string {
	if m.IsComment {
		return fmt.Sprintf("comment %q", m.Comment)
	}
	ev := m.Event
	s := fmt.Sprintf("event type=%q topic=%q id=%q data=%q", ev.Type, ev.Topic, ev.ID, ev.Data)
	if ev.Gap {
		if ev.Missed == nil {
			return s + " gap missed=null"
		}
		return s + fmt.Sprintf(" gap missed=%d", *ev.Missed)
	}
	if ev.Missed != nil {
		s += " missed set on a non-gap event"
	}
	return s
}

// ev is the expected form of a plain event on the default topic.
func ev(data, id string) string { return evOn("message", "default", data, id) }

func evOn(typ, topic, data, id string) string {
	return fmt.Sprintf("event type=%q topic=%q id=%q data=%q", typ, topic, id, data)
}

func comment(text string) string { return fmt.Sprintf("comment %q", text) }

// readAll reads every message of stream, through r when it is not nil.
func readAll(t *testing.T, stream string, wrap func(io.Reader) io.Reader) ([]string, *client.Reader) {
	t.Helper()
	var src io.Reader = strings.NewReader(stream)
	if wrap != nil {
		src = wrap(src)
	}
	r := client.NewReader(src)
	var msgs []string
	for {
		m, err := r.NextMessage()
		if errors.Is(err, io.EOF) {
			return msgs, r
		}
		if err != nil {
			t.Fatalf("NextMessage: %v", err)
		}
		msgs = append(msgs, got(m))
	}
}

func TestReaderGolden(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, stream string
		want         []string
		wantID       string
		wantRetry    time.Duration // -1: none
	}{
		{"one event", "data: {\"a\":1}\n\n", []string{ev(`{"a":1}`, "")}, "", -1},
		{"the service's frame", "id: r1-7\nevent: start\ntopic: video.main\ndata: {\"b\":2}\n\n",
			[]string{evOn("start", "video.main", `{"b":2}`, "r1-7")}, "r1-7", -1},
		{"greeting, heartbeat", ": connected\nretry: 2731\n\n: ping\n\n",
			[]string{comment("connected"), comment("ping")}, "", 2731 * time.Millisecond},
		{"empty comment", ":\n", []string{comment("")}, "", -1},
		{"turned away", ": too many listeners\nretry: 150\n\n", []string{comment("too many listeners")}, "", 150 * time.Millisecond},
		// The examples of the WHATWG standard.
		{"multi-line data", "data: YHOO\ndata: +2\ndata: 10\n\n", []string{ev("YHOO\n+2\n10", "")}, "", -1},
		{"ids", ": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n\n",
			[]string{comment("test stream"), ev("first event", "1"), ev("second event", ""), ev(" third event", "")}, "", -1},
		{"empty data", "data\n\ndata\ndata\n\ndata:\n", []string{ev("", ""), ev("\n", "")}, "", -1},
		{"space after colon", "data:test\n\ndata: test\n\n", []string{ev("test", ""), ev("test", "")}, "", -1},
		// Line endings.
		{"LF", "data: a\n\ndata: b\n\n", []string{ev("a", ""), ev("b", "")}, "", -1},
		{"CR", "data: a\r\rdata: b\r\r", []string{ev("a", ""), ev("b", "")}, "", -1},
		{"CRLF", "data: a\r\n\r\ndata: b\r\n\r\n", []string{ev("a", ""), ev("b", "")}, "", -1},
		{"mixed", "data: a\r\n\rdata: b\n\r\n", []string{ev("a", ""), ev("b", "")}, "", -1},
		{"CR at the very end", "data: a\n\r", []string{ev("a", "")}, "", -1},
		{"BOM", "\uFEFFdata: a\n\n", []string{ev("a", "")}, "", -1},
		{"second BOM kept", "\uFEFF\uFEFFdata: a\n\n", nil, "", -1}, // the field is "\uFEFFdata"
		// Named events, topics and gaps.
		{"named event", "event: play\ndata: x\n\ndata: y\n\n", []string{evOn("play", "default", "x", ""), ev("y", "")}, "", -1},
		{"empty event name", "event\ndata: x\n\n", []string{ev("x", "")}, "", -1},
		{"topic applies to its block", "topic: a\ndata: x\n\ndata: y\n\n", []string{evOn("message", "a", "x", ""), ev("y", "")}, "", -1},
		{"empty topic", "topic:\ndata: x\n\n", []string{ev("x", "")}, "", -1},
		{"gap", "id: r1-3\ndata: a\n\nevent: gap\ndata: {\"missed\":1532}\n\n",
			[]string{ev("a", "r1-3"), evOn("gap", "", `{"missed":1532}`, "r1-3") + " gap missed=1532"}, "r1-3", -1},
		{"gap of unknown size", "event: gap\ndata: {\"missed\":null}\n\n",
			[]string{evOn("gap", "", `{"missed":null}`, "") + " gap missed=null"}, "", -1},
		{"gap with other data", "event: gap\ndata: ?\n\n", []string{evOn("gap", "", "?", "") + " gap missed=null"}, "", -1},
		// Fields.
		{"unknown field", "foo: bar\ndata: a\n\n", []string{ev("a", "")}, "", -1},
		{"field without colon", "data\n\n", []string{ev("", "")}, "", -1},
		{"colon in value", "data: a:b\n\n", []string{ev("a:b", "")}, "", -1},
		{"id with NUL ignored", "id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n", []string{ev("a", "1"), ev("b", "1")}, "1", -1},
		{"id without data sets the last id", "id: 1\n\n", nil, "1", -1},
		{"id reset", "id: 1\ndata: a\n\nid\ndata: b\n\n", []string{ev("a", "1"), ev("b", "")}, "", -1},
		{"retry", "retry: 2500\n\nretry: 12x\n\nretry: -1\n\nretry\n\n", nil, "", 2500 * time.Millisecond},
		{"retry takes effect at once", "retry: 7\n", nil, "", 7 * time.Millisecond},
		{"retry overflow saturates", "retry: 99999999999999999999999\n\n", nil, "", time.Duration(math.MaxInt64/int64(time.Millisecond)) * time.Millisecond},
		// The end of the stream.
		{"incomplete event at EOF dropped", "data: a\n\ndata: b\n", []string{ev("a", "")}, "", -1},
		{"unended line at EOF dropped", "data: a\n\nretry: 5", []string{ev("a", "")}, "", -1},
		{"id of an unended block", "data: a\n\nid: 9\n", []string{ev("a", "")}, "", -1},
		{"nothing", "", nil, "", -1},
		// UTF-8.
		{"invalid UTF-8", "data: a\xffb\n\n", []string{ev("a\uFFFDb", "")}, "", -1},
		{"maximal subparts", "data: \x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64\n\n",
			[]string{ev("a\uFFFD\uFFFD\uFFFDb\uFFFDc\uFFFD\uFFFDd", "")}, "", -1},
		{"surrogates and overlongs", "data: \xED\xA0\x80\xC0\xAF\xF4\x90\x80\x80\n\n",
			[]string{ev(strings.Repeat("\uFFFD", 9), "")}, "", -1},
		{"invalid in a field name", "da\xffta: a\n\n", nil, "", -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, wrap := range []struct {
				name string
				fn   func(io.Reader) io.Reader
			}{{"whole", nil}, {"bytewise", iotest.OneByteReader}, {"halves", iotest.HalfReader}} {
				msgs, r := readAll(t, tc.stream, wrap.fn)
				if strings.Join(msgs, "\n") != strings.Join(tc.want, "\n") {
					t.Fatalf("%s: got\n\t%s\nwant\n\t%s", wrap.name, strings.Join(msgs, "\n\t"), strings.Join(tc.want, "\n\t"))
				}
				if id := r.LastEventID(); id != tc.wantID {
					t.Errorf("%s: LastEventID: got %q, want %q", wrap.name, id, tc.wantID)
				}
				retry, ok := r.Retry()
				if !ok {
					retry = -1
				}
				if retry != tc.wantRetry {
					t.Errorf("%s: Retry: got %v, want %v", wrap.name, retry, tc.wantRetry)
				}
			}
		})
	}
}

// TestReaderNextSkipsComments: Next returns the events alone.
func TestReaderNextSkipsComments(t *testing.T) {
	t.Parallel()
	r := client.NewReader(strings.NewReader(": connected\n\n: ping\n\nid: 1\ndata: a\n\n: ping\n\n"))
	e, err := r.Next()
	if err != nil || string(e.Data) != "a" || e.ID != "1" {
		t.Fatalf("Next: got %+v, %v; want the event", e, err)
	}
	if _, err := r.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("Next at the end: got %v, want io.EOF", err)
	}
}

// TestReaderTooLong: a line, or an event's data, over the limit ends the
// stream with ErrTooLong, every call after it too.
func TestReaderTooLong(t *testing.T) {
	t.Parallel()
	line := "data: " + strings.Repeat("x", 8<<20) + "\n"
	for name, stream := range map[string]string{
		"line":  "data: " + strings.Repeat("x", 17<<20) + "\n\n",
		"event": line + line + line + "\n",
	} {
		r := client.NewReader(strings.NewReader(stream))
		for range 2 {
			if _, err := r.Next(); !errors.Is(err, client.ErrTooLong) {
				t.Fatalf("%s: got %v, want ErrTooLong", name, err)
			}
		}
	}
}

// TestReaderError: the underlying reader's error is returned as it is.
func TestReaderError(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	r := client.NewReader(io.MultiReader(strings.NewReader("data: a\n\ndata: b\n"), iotest.ErrReader(boom)))
	if e, err := r.Next(); err != nil || string(e.Data) != "a" {
		t.Fatalf("first: got %+v, %v", e, err)
	}
	if _, err := r.Next(); !errors.Is(err, boom) {
		t.Fatalf("second: got %v, want the reader's error", err)
	}
}

// TestReaderDataIsOwned: an event's Data is its own, not a view of the
// reader's buffer.
func TestReaderDataIsOwned(t *testing.T) {
	t.Parallel()
	r := client.NewReader(strings.NewReader("data: first\n\ndata: other\n\n"))
	a, _ := r.Next()
	b, _ := r.Next()
	if string(a.Data) != "first" || string(b.Data) != "other" {
		t.Fatalf("got %q and %q", a.Data, b.Data)
	}
}

// TestReaderAllocs: reading an event allocates its Data and its id, and
// nothing else once the buffers have grown.
func TestReaderAllocs(t *testing.T) {
	const n = 100
	var stream strings.Builder
	for i := range n + 1 {
		fmt.Fprintf(&stream, "id: r1-%d\nevent: play\ntopic: video\ndata: {\"a\":%d}\n\n: ping\n\n", i, i)
	}
	r := client.NewReader(strings.NewReader(stream.String()))
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(n-1, func() {
		if _, err := r.Next(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 2 {
		t.Errorf("%.1f allocations per event, want at most 2 (Data and ID)", allocs)
	}
}
