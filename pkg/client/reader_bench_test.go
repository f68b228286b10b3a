package client_test

import (
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/client"
)

// chunked gives at most size bytes per Read, as a network connection does.
type chunked struct {
	r    io.Reader
	size int
}

func (c chunked) Read(p []byte) (int, error) { return c.r.Read(p[:min(len(p), c.size)]) }

// BenchmarkReader reads the service's frames, a heartbeat between them, as
// they come off a connection.
func BenchmarkReader(b *testing.B) {
	for _, size := range []int{64, 1 << 10, 64 << 10} {
		b.Run(fmt.Sprintf("data=%d", size), func(b *testing.B) {
			frame := fmt.Sprintf("id: r2m8qx0ue3a1c-1\nevent: play\ntopic: video.main\ndata: {\"s\":%q}\n\n: ping\n\n",
				strings.Repeat("x", size))
			stream := strings.Repeat(frame, 64)
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			r := client.NewReader(strings.NewReader(""))
			for b.Loop() {
				if _, err := r.Next(); err != nil {
					r = client.NewReader(chunked{strings.NewReader(stream), 16 << 10})
					if _, err := r.Next(); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// BenchmarkReaderLongLine reads one event of 1 MiB arriving 4 KiB at a
// time: the end of its line is searched for once, not once per read.
func BenchmarkReaderLongLine(b *testing.B) {
	stream := "data: " + strings.Repeat("x", 1<<20) + "\n\n"
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		r := client.NewReader(chunked{strings.NewReader(stream), 4 << 10})
		if _, err := r.Next(); err != nil {
			b.Fatal(err)
		}
	}
}
