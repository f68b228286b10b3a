package client_test

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf8"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/client"
)

// FuzzReader feeds arbitrary streams to the parser: it must not panic or
// loop, what it dispatches must obey the format (no CR or LF in types, ids,
// topics or comments, data lines only joined by LF, valid UTF-8, a gap only
// for the gap type), and how the bytes arrive must not change what it reads.
func FuzzReader(f *testing.F) {
	for _, s := range []string{
		"data: a\n\n", ": c\r\n\r\n", "event: x\rdata: y\r\r", "retry: 10\n\n", "id: 1\ndata\n\n",
		"id: r1-2\nevent: play\ntopic: t.a\ndata: {\"a\":1}\n\n", "event: gap\ndata: {\"missed\":3}\n\n",
		"\uFEFFdata: \xE1\x80\xC2\n\r\n", "data: a\n\nid: 2\x00\ndata: b\r",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, stream string) {
		whole := read(t, stream, nil)
		if bytewise := read(t, stream, iotest.OneByteReader); strings.Join(bytewise, "\n") != strings.Join(whole, "\n") {
			t.Fatalf("read whole:\n\t%s\nread byte by byte:\n\t%s", strings.Join(whole, "\n\t"), strings.Join(bytewise, "\n\t"))
		}
	})
}

// read returns what the reader reads of stream, checking each message.
func read(t *testing.T, stream string, wrap func(io.Reader) io.Reader) []string {
	var src io.Reader = strings.NewReader(stream)
	if wrap != nil {
		src = wrap(src)
	}
	r := client.NewReader(src)
	var msgs []string
	for range len(stream) + 1 {
		m, err := r.NextMessage()
		if errors.Is(err, io.EOF) {
			return msgs
		}
		if err != nil {
			t.Fatalf("NextMessage: %v", err)
		}
		ev := m.Event
		if strings.ContainsAny(ev.Type+ev.ID+ev.Topic+m.Comment, "\r\n") || strings.Contains(string(ev.Data), "\r") {
			t.Fatalf("line break leaked into %s", got(m))
		}
		if !utf8.ValidString(ev.Type+ev.ID+ev.Topic+m.Comment) || !utf8.Valid(ev.Data) {
			t.Fatalf("invalid UTF-8 in %s", got(m))
		}
		if strings.Contains(ev.ID, "\x00") {
			t.Fatalf("NUL in the id of %s", got(m))
		}
		if !m.IsComment && (ev.Type == "" || ev.Gap != (ev.Type == client.TypeGap) || ev.Missed != nil && !ev.Gap ||
			ev.Gap != (ev.Topic == "")) {
			t.Fatalf("inconsistent event %s", got(m))
		}
		msgs = append(msgs, got(m))
	}
	t.Fatalf("more messages than bytes in %q", stream)
	return nil
}
