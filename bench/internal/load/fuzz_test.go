package load

import (
	"bytes"
	"errors"
	"testing"
)

// splitAt cuts b into pieces at positions derived from seed, so that a fuzz
// input decides both the stream and how it arrives.
func splitAt(b []byte, seed uint64) [][]byte {
	var pieces [][]byte
	for len(b) > 0 {
		n := int(seed%7) + 1
		seed = seed/7 + seed*31 + 1
		n = min(n, len(b))
		pieces = append(pieces, b[:n])
		b = b[n:]
	}
	return pieces
}

// scanCounts feeds pieces to a scanner and returns it with its samples.
func scanCounts(pieces [][]byte, prefix []byte) (*FrameScanner, []string) {
	sc := &FrameScanner{SampleEvery: 1, EventPrefix: prefix}
	var samples []string
	sc.OnSample = func(p []byte) { samples = append(samples, string(p)) }
	for _, p := range pieces {
		sc.Feed(p)
	}
	return sc, samples
}

// FuzzFrameScanner checks that how a stream is cut into reads changes
// nothing: the counts and the samples are those of the stream fed whole,
// with and without an event prefix.
func FuzzFrameScanner(f *testing.F) {
	f.Add([]byte(mixedStream), uint64(1), false)
	f.Add([]byte(centrifugoStream), uint64(12345), true)
	f.Add([]byte("data:\n\ndata: x\r\n\r\n:c\n\n"), uint64(3), false)
	f.Add([]byte("event: gap\ndata: {\"missed\": 4}\n\n"), uint64(99), true)
	f.Fuzz(func(t *testing.T, stream []byte, seed uint64, withPrefix bool) {
		var prefix []byte
		if withPrefix {
			prefix = []byte(`{"channel":"bench","pub":`)
		}
		whole, wantSamples := scanCounts([][]byte{stream}, prefix)
		split, gotSamples := scanCounts(splitAt(stream, seed), prefix)
		type counts struct{ data, comments, retries, gaps, missed, named, control, blocks int64 }
		c := func(s *FrameScanner) counts {
			return counts{s.Data, s.Comments, s.Retries, s.Gaps, s.GapMissed, s.Named, s.Control, s.Blocks}
		}
		if c(whole) != c(split) {
			t.Fatalf("whole %+v, split %+v", c(whole), c(split))
		}
		if whole.Data+whole.Comments+whole.Retries+whole.Gaps+whole.Named+whole.Control != whole.Blocks {
			t.Fatalf("kinds do not add up to blocks: %+v", c(whole))
		}
		if len(stream) < maxCapture && !bytes.Equal(joinStrings(wantSamples), joinStrings(gotSamples)) {
			t.Fatalf("samples differ: whole %q, split %q", wantSamples, gotSamples)
		}
	})
}

func joinStrings(s []string) []byte {
	var b []byte
	for _, x := range s {
		b = append(b, x...)
		b = append(b, 0)
	}
	return b
}

// FuzzParseEvent checks that no input makes the event parser panic or read
// past its input, and that an event built by NewBody, inside an envelope or
// not, is always found.
func FuzzParseEvent(f *testing.F) {
	f.Add([]byte(`{"run":"abcd1234","pid":3,"seq":99,"ts":1764000000000000123}`), uint64(7))
	f.Add([]byte(`{"channel":"bench","pub":{"data":{"run":"r","pid":1,"seq":2,"ts":3}}}`), uint64(0))
	f.Add([]byte(`{"a":{"b":[{"c":"}"}]},"run":"x"`), uint64(1<<40))
	f.Fuzz(func(t *testing.T, line []byte, seq uint64) {
		if f1, ok := parseEvent(line); ok {
			if f2, ok2 := parseEvent(line); !ok2 || !bytes.Equal(f1.run, f2.run) || f1.seq != f2.seq || f1.ts != f2.ts || f1.pid != f2.pid {
				t.Fatalf("not deterministic: %+v / %+v", f1, f2)
			}
		}
		seq %= 1 << 60
		b := newWrappedBody(`{"channel":"bench","pub":{"data":`, `}}`, "0badcafe", 5, 200, 0)
		b.Set(seq, int64(seq)+1)
		f1, ok := parseEvent(b.Bytes())
		if !ok || string(f1.run) != "0badcafe" || f1.pid != 5 || f1.seq != int64(seq) || f1.ts != int64(seq)+1 {
			t.Fatalf("own event not found in %s: %+v", b.Bytes(), f1)
		}
	})
}

// FuzzChunkedDecoder checks that the chunked decoder gives the same
// payload and the same outcome (complete, error, or waiting for more)
// however its input is cut.
func FuzzChunkedDecoder(f *testing.F) {
	f.Add([]byte("4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\nTrailer: x\r\n\r\n"), uint64(5))
	f.Add([]byte("zz\r\n"), uint64(1))
	f.Add([]byte("3\r\nabcX"), uint64(2))
	f.Fuzz(func(t *testing.T, enc []byte, seed uint64) {
		decode := func(pieces [][]byte) (out []byte, err error) {
			var d ChunkedDecoder
			for _, p := range pieces {
				if err := d.Decode(p, func(b []byte) { out = append(out, b...) }); err != nil {
					return out, err
				}
			}
			return out, nil
		}
		wantOut, wantErr := decode([][]byte{enc})
		gotOut, gotErr := decode(splitAt(enc, seed))
		outcome := func(err error) string {
			switch {
			case err == nil:
				return "more"
			case errors.Is(err, ErrChunkedEnd):
				return "end"
			default:
				return "error"
			}
		}
		if outcome(wantErr) != outcome(gotErr) {
			t.Fatalf("whole: %v, split: %v", wantErr, gotErr)
		}
		if outcome(wantErr) != "error" && !bytes.Equal(wantOut, gotOut) {
			t.Fatalf("payload whole %q, split %q", wantOut, gotOut)
		}
	})
}
