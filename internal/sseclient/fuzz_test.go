package sseclient_test

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/sseclient"
)

// FuzzReader feeds arbitrary streams to the parser: it must not panic or
// loop, and what it dispatches must obey the format (no CR or LF in types or
// ids, data lines only joined by LF).
func FuzzReader(f *testing.F) {
	for _, s := range []string{"data: a\n\n", ": c\r\n\r\n", "event: x\rdata: y\r\r", "retry: 10\n\n", "id: 1\ndata\n\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, stream string) {
		r := sseclient.NewReader(strings.NewReader(stream))
		for range len(stream) + 1 {
			m, err := r.Next()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				return // over-long line
			}
			if strings.ContainsAny(m.Type+m.ID, "\r\n") || strings.Contains(m.Data, "\r") {
				t.Fatalf("line break leaked into %+v", m)
			}
		}
		t.Fatalf("more messages than bytes in %q", stream)
	})
}
