package load

import "testing"

// benchDecodeScan measures de-chunking plus counting of a stream of 128 B
// events as a server flushing per event (1 frame per chunk) or in batches
// sends them. Reported: ns per frame.
func benchDecodeScan(b *testing.B, framesPerChunk int, sample int64) {
	stream, _ := buildFrameStream(128, framesPerChunk)
	var sc FrameScanner
	sc.SampleEvery = sample
	sc.OnSample = func(p []byte) { parseEvent(p) }
	var dec ChunkedDecoder
	feed := sc.Feed
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		if err := dec.Decode(stream, feed); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(sc.Data), "ns/frame")
}

func BenchmarkDecodeScan1PerChunk(b *testing.B)         { benchDecodeScan(b, 1, 0) }
func BenchmarkDecodeScan1PerChunkWithIDs(b *testing.B)  { benchDecodeScanIDs(b) }
func BenchmarkDecodeScan1PerChunkSample16(b *testing.B) { benchDecodeScan(b, 1, 16) }
func BenchmarkDecodeScan16PerChunk(b *testing.B)        { benchDecodeScan(b, 16, 0) }

// benchDecodeScanIDs is benchDecodeScan(b, 1, 0) with an id line in every
// frame, as the service sends them.
func benchDecodeScanIDs(b *testing.B) {
	stream := buildIDStream(b, 128)
	var sc FrameScanner
	var dec ChunkedDecoder
	feed := sc.Feed
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		if err := dec.Decode(stream, feed); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(sc.Data), "ns/frame")
}

func BenchmarkParseEvent(b *testing.B) {
	body := NewBody("abcd1234", 3, 128).Bytes()
	line := append(append([]byte{}, body[:len(body)-1]...), `,"user_ip":"127.0.0.1"}`...)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := parseEvent(line); !ok {
			b.Fatal("parse")
		}
	}
}

func BenchmarkBodySet(b *testing.B) {
	body := NewBody("abcd1234", 3, 128)
	b.ReportAllocs()
	var seq uint64
	for b.Loop() {
		seq++
		body.Set(seq, 1_764_000_000_000_000_000+int64(seq))
	}
}
