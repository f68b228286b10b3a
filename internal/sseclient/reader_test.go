package sseclient_test

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/sseclient"
)

func readAll(t *testing.T, stream string) ([]sseclient.Message, *sseclient.Reader) {
	t.Helper()
	r := sseclient.NewReader(strings.NewReader(stream))
	var msgs []sseclient.Message
	for {
		m, err := r.Next()
		if errors.Is(err, io.EOF) {
			return msgs, r
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		msgs = append(msgs, m)
	}
}

func TestReader(t *testing.T) {
	t.Parallel()
	msg := func(typ, data, id string) sseclient.Message {
		return sseclient.Message{Type: typ, Data: data, ID: id}
	}
	comment := func(text string) sseclient.Message { return sseclient.Message{Comment: true, Data: text} }
	tests := []struct {
		name, stream string
		want         []sseclient.Message
		wantRetry    int64
	}{
		{"one event", "data: {\"a\":1}\n\n", []sseclient.Message{msg("message", `{"a":1}`, "")}, -1},
		{"comments", ": connected\n\n:\n", []sseclient.Message{comment("connected"), comment("")}, -1},
		// Examples from the WHATWG standard.
		{"multi-line data", "data: YHOO\ndata: +2\ndata: 10\n\n", []sseclient.Message{msg("message", "YHOO\n+2\n10", "")}, -1},
		{"ids", ": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n\n",
			[]sseclient.Message{comment("test stream"), msg("message", "first event", "1"), msg("message", "second event", ""), msg("message", " third event", "")}, -1},
		{"empty data", "data\n\ndata\ndata\n\ndata:\n", []sseclient.Message{msg("message", "", ""), msg("message", "\n", "")}, -1},
		{"space after colon", "data:test\n\ndata: test\n\n", []sseclient.Message{msg("message", "test", ""), msg("message", "test", "")}, -1},
		{"named event", "event: gap\ndata: {\"missed\":3}\n\ndata: x\n\n",
			[]sseclient.Message{msg("gap", `{"missed":3}`, ""), msg("message", "x", "")}, -1},
		{"CR and CRLF", "data: a\r\rdata: b\r\n\r\n", []sseclient.Message{msg("message", "a", ""), msg("message", "b", "")}, -1},
		{"BOM", "\uFEFFdata: a\n\n", []sseclient.Message{msg("message", "a", "")}, -1},
		{"retry", "retry: 2500\n\nretry: 12x\n\n", nil, 2500},
		{"unterminated block is dropped", "data: a\n\ndata: b\n", []sseclient.Message{msg("message", "a", "")}, -1},
		{"unknown field", "foo: bar\ndata: a\n\n", []sseclient.Message{msg("message", "a", "")}, -1},
		{"id with NUL ignored", "id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n", []sseclient.Message{msg("message", "a", "1"), msg("message", "b", "1")}, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, r := readAll(t, tc.stream)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d messages %+v, want %d %+v", len(got), got, len(tc.want), tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("message %d: got %+v, want %+v", i, got[i], tc.want[i])
				}
			}
			if r.Retry != tc.wantRetry {
				t.Errorf("Retry: got %d, want %d", r.Retry, tc.wantRetry)
			}
		})
	}
}
