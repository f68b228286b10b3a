package load

import (
	"bytes"
	"fmt"
	"math/rand"
	"strings"
	"testing"
)

// feedAll feeds s into a fresh scanner in pieces cut at the given positions.
func scanPieces(s string, cuts []int, sample int64) (*FrameScanner, []string) {
	sc := &FrameScanner{SampleEvery: sample}
	var samples []string
	sc.OnSample = func(p []byte) { samples = append(samples, string(p)) }
	prev := 0
	for _, c := range cuts {
		sc.Feed([]byte(s[prev:c]))
		prev = c
	}
	sc.Feed([]byte(s[prev:]))
	return sc, samples
}

const mixedStream = ": connected\n\n" +
	"retry: 2000\n\n" +
	"data: {\"a\":1}\n\n" +
	"id: 7\ndata: {\"a\":2}\n\n" +
	":\n" + // heartbeat comment line, part of the next block
	"data: {\"a\":3}\n\n" +
	": ping\n\n" +
	"event: gap\ndata: {\"missed\":12}\n\n" +
	"event: message\ndata: {\"a\":4}\n\n" +
	"event: other\ndata: x\n\n" +
	"data\n\n" + // empty data field: still a message event
	"\n\n" + // stray blank lines: no event
	"data: {\"a\":5}\r\n\r\n" + // CRLF
	"data: {\"a\":6}\ndata: second line\n\n"

func checkMixed(t *testing.T, sc *FrameScanner, samples []string, what string) {
	t.Helper()
	if sc.Data != 7 || sc.Gaps != 1 || sc.GapMissed != 12 || sc.Named != 1 || sc.Retries != 1 || sc.Comments != 2 {
		t.Fatalf("%s: data=%d gaps=%d missed=%d named=%d retries=%d comments=%d", what,
			sc.Data, sc.Gaps, sc.GapMissed, sc.Named, sc.Retries, sc.Comments)
	}
	want := []string{`{"a":1}`, `{"a":2}`, `{"a":3}`, `{"a":4}`, ``, `{"a":5}`, `{"a":6}`}
	if strings.Join(samples, "|") != strings.Join(want, "|") {
		t.Fatalf("%s: samples %q, want %q", what, samples, want)
	}
}

func TestFrameScannerMixed(t *testing.T) {
	sc, samples := scanPieces(mixedStream, nil, 1)
	checkMixed(t, sc, samples, "whole")
}

func TestFrameScannerEverySplit(t *testing.T) {
	// Every possible single split, and every byte fed separately.
	for i := 0; i <= len(mixedStream); i++ {
		sc, samples := scanPieces(mixedStream, []int{i}, 1)
		checkMixed(t, sc, samples, fmt.Sprintf("split at %d", i))
	}
	var cuts []int
	for i := 1; i < len(mixedStream); i++ {
		cuts = append(cuts, i)
	}
	sc, samples := scanPieces(mixedStream, cuts, 1)
	checkMixed(t, sc, samples, "byte by byte")
}

func TestFrameScannerRandomSplits(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	stream := strings.Repeat(mixedStream, 20)
	for iter := 0; iter < 200; iter++ {
		var cuts []int
		for pos := 0; ; {
			pos += 1 + rng.Intn(40)
			if pos >= len(stream) {
				break
			}
			cuts = append(cuts, pos)
		}
		sc, samples := scanPieces(stream, cuts, 1)
		if sc.Data != 140 || sc.Gaps != 20 || sc.GapMissed != 240 || len(samples) != 140 {
			t.Fatalf("iter %d: data=%d gaps=%d missed=%d samples=%d", iter, sc.Data, sc.Gaps, sc.GapMissed, len(samples))
		}
	}
}

// buildIDStream returns chunked frames, one per chunk, each with an id line
// as the service sends them.
func buildIDStream(tb testing.TB, size int) []byte {
	tb.Helper()
	body := NewBody("ids00000", 0, size).Bytes()
	var out []byte
	for i := range 64 {
		frame := fmt.Appendf(nil, "id: rcze3494gzn6j-%d\ndata: %s\n\n", i, body)
		out = fmt.Appendf(out, "%x\r\n%s\r\n", len(frame), frame)
	}
	return out
}

func TestFrameScannerIDLines(t *testing.T) {
	stream := "id: a-1\ndata: {\"n\":1}\n\nid: a-2\r\ndata: {\"n\":2}\n\nid\ndata: {\"n\":3}\n\nid: a-4\nevent: gap\ndata: {\"missed\":2}\n\n"
	for i := 0; i <= len(stream); i++ {
		sc, samples := scanPieces(stream, []int{i}, 1)
		if sc.Data != 3 || sc.Gaps != 1 || sc.GapMissed != 2 || strings.Join(samples, "|") != `{"n":1}|{"n":2}|{"n":3}` {
			t.Fatalf("split at %d: data=%d gaps=%d samples=%q", i, sc.Data, sc.Gaps, samples)
		}
	}
	var sc FrameScanner
	var dec ChunkedDecoder
	if err := dec.Decode(buildIDStream(t, 128), sc.Feed); err != nil || sc.Data != 64 || sc.Blocks != 64 {
		t.Fatalf("chunked id frames: data=%d blocks=%d err=%v", sc.Data, sc.Blocks, err)
	}
}

func TestFrameScannerSampling(t *testing.T) {
	var b strings.Builder
	for i := 0; i < 100; i++ {
		fmt.Fprintf(&b, "data: {\"n\":%d}\n\n", i)
	}
	for _, every := range []int64{0, 1, 3, 10, 1000} {
		sc, samples := scanPieces(b.String(), []int{7, 300, 301, 900}, every)
		if sc.Data != 100 {
			t.Fatalf("every %d: data=%d", every, sc.Data)
		}
		want := 0
		if every > 0 {
			want = int(100 / every)
		}
		if len(samples) != want {
			t.Fatalf("every %d: %d samples, want %d", every, len(samples), want)
		}
	}
}

func TestFrameScannerLongLineAcrossReads(t *testing.T) {
	payload := `{"pad":"` + strings.Repeat("x", 5000) + `"}`
	stream := "data: " + payload + "\n\n"
	cuts := []int{1, 3, 5, 6, 100, 4000}
	sc, samples := scanPieces(stream, cuts, 1)
	if sc.Data != 1 || len(samples) != 1 || samples[0] != payload {
		t.Fatalf("data=%d samples=%d", sc.Data, len(samples))
	}
}

// centrifugoStream is what a Centrifugo uni_sse listener of channel "bench"
// reads: a blank line, the connect reply, publications and pings.
var centrifugoStream = "\r\n" +
	"data: {\"connect\":{\"client\":\"c1\",\"subs\":{\"bench\":{}},\"ping\":25}}\n\n" +
	"data: {\"channel\":\"bench\",\"pub\":{\"data\":{\"n\":1}}}\n\n" +
	"data: {}\n\n" +
	"data: {\"channel\":\"bench\",\"pub\":{\"data\":{\"n\":2}}}\n\n" +
	"data: {\"channel\":\"other\",\"pub\":{\"data\":{\"n\":0}}}\n\n" +
	"data: {\"channel\":\"bench\",\"pub\":{\"data\":{\"pad\":\"" + strings.Repeat("y", 300) + "\"}}}\n\n"

func TestFrameScannerEventPrefix(t *testing.T) {
	prefix := []byte(`{"channel":"bench","pub":`)
	check := func(t *testing.T, cuts []int, what string) {
		t.Helper()
		sc := &FrameScanner{SampleEvery: 1, EventPrefix: prefix}
		var samples []string
		sc.OnSample = func(p []byte) { samples = append(samples, string(p)) }
		prev := 0
		for _, c := range cuts {
			sc.Feed([]byte(centrifugoStream[prev:c]))
			prev = c
		}
		sc.Feed([]byte(centrifugoStream[prev:]))
		if sc.Data != 3 || sc.Control != 3 || sc.Blocks != 6 || len(samples) != 3 {
			t.Fatalf("%s: data=%d control=%d blocks=%d samples=%d", what, sc.Data, sc.Control, sc.Blocks, len(samples))
		}
		for _, s := range samples {
			if !strings.HasPrefix(s, string(prefix)) {
				t.Fatalf("%s: sample %q is not an event", what, s)
			}
		}
	}
	for i := 0; i <= len(centrifugoStream); i++ {
		check(t, []int{i}, fmt.Sprintf("split at %d", i))
	}
	var cuts []int
	for i := 1; i < len(centrifugoStream); i++ {
		cuts = append(cuts, i)
	}
	check(t, cuts, "byte by byte")
}

func TestFrameScannerTruncatedLineStillClassified(t *testing.T) {
	// A first data line longer than the capture limit, split across reads:
	// the block is still classified by its start, but never sampled.
	long := `{"channel":"bench","pub":{"data":"` + strings.Repeat("z", maxCapture+100) + `"}}`
	stream := "data: " + long + "\n\ndata: {}\n\n"
	sc := &FrameScanner{SampleEvery: 1, EventPrefix: []byte(`{"channel":"bench","pub":`)}
	sampled := 0
	sc.OnSample = func([]byte) { sampled++ }
	for i := 0; i < len(stream); i += 1000 {
		sc.Feed([]byte(stream[i:min(i+1000, len(stream))]))
	}
	if sc.Data != 1 || sc.Control != 1 || sampled != 0 {
		t.Fatalf("data=%d control=%d sampled=%d", sc.Data, sc.Control, sampled)
	}
}

func TestChunkedDecoder(t *testing.T) {
	body := "Wiki" + "pedia in\r\n\r\nchunks."
	enc := "4\r\nWiki\r\n" + "5;ext=1\r\npedia\r\n" + "E\r\n in\r\n\r\nchunks.\r\n" + "0\r\nTrailer: x\r\n\r\n"
	for split := 0; split <= len(enc); split++ {
		var d ChunkedDecoder
		var out bytes.Buffer
		sink := func(p []byte) { out.Write(p) }
		err1 := d.Decode([]byte(enc[:split]), sink)
		if err1 != nil && err1 != ErrChunkedEnd {
			t.Fatalf("split %d: %v", split, err1)
		}
		err2 := d.Decode([]byte(enc[split:]), sink)
		if split == len(enc) {
			if err1 != ErrChunkedEnd {
				t.Fatalf("whole: err %v", err1)
			}
		} else if err2 != ErrChunkedEnd {
			t.Fatalf("split %d: end err %v", split, err2)
		}
		if out.String() != body {
			t.Fatalf("split %d: got %q", split, out.String())
		}
		if d.Chunks != 3 {
			t.Fatalf("split %d: chunks %d", split, d.Chunks)
		}
	}
}

func TestChunkedDecoderErrors(t *testing.T) {
	for _, bad := range []string{"zz\r\n", "\r\n", "3\r\nabcX", "3\rX"} {
		var d ChunkedDecoder
		if err := d.Decode([]byte(bad), func([]byte) {}); err == nil || err == ErrChunkedEnd {
			t.Errorf("%q: want error, got %v", bad, err)
		}
	}
}

func TestChunkedThenScan(t *testing.T) {
	// Frames split across chunks in awkward places, as a server flushing
	// partial writes would produce.
	stream := strings.Repeat(mixedStream, 3)
	var enc strings.Builder
	rng := rand.New(rand.NewSource(2))
	for rest := stream; len(rest) > 0; {
		n := 1 + rng.Intn(30)
		if n > len(rest) {
			n = len(rest)
		}
		fmt.Fprintf(&enc, "%x\r\n%s\r\n", n, rest[:n])
		rest = rest[n:]
	}
	enc.WriteString("0\r\n\r\n")
	raw := enc.String()
	for _, step := range []int{1, 7, 64, len(raw)} {
		var d ChunkedDecoder
		sc := &FrameScanner{}
		var err error
		for i := 0; i < len(raw); i += step {
			j := i + step
			if j > len(raw) {
				j = len(raw)
			}
			err = d.Decode([]byte(raw[i:j]), sc.Feed)
		}
		if err != ErrChunkedEnd {
			t.Fatalf("step %d: %v", step, err)
		}
		if sc.Data != 21 || sc.Gaps != 3 {
			t.Fatalf("step %d: data=%d gaps=%d", step, sc.Data, sc.Gaps)
		}
	}
}

func TestParseResponseHead(t *testing.T) {
	st, chunked, err := parseResponseHead([]byte("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\ntransfer-encoding: Chunked\r\n"))
	if err != nil || st != 200 || !chunked {
		t.Fatalf("got %d %v %v", st, chunked, err)
	}
	st, chunked, err = parseResponseHead([]byte("HTTP/1.0 503 Service Unavailable\r\n"))
	if err != nil || st != 503 || chunked {
		t.Fatalf("got %d %v %v", st, chunked, err)
	}
	if _, _, err := parseResponseHead([]byte("garbage\r\n")); err == nil {
		t.Fatal("want error")
	}
}
