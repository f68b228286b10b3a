package load

import (
	"errors"
	"fmt"
)

// ChunkedDecoder is a minimal streaming decoder for HTTP/1.1 chunked transfer
// encoding. It never copies payload bytes: Decode hands sub-slices of its
// input to the sink. Input may be split at any byte.
type ChunkedDecoder struct {
	state     chunkState
	size      int64 // size of the current chunk being parsed / remaining bytes
	sawDigit  bool
	trailerNL bool // the current trailer line is empty so far
	// Chunks counts the chunks decoded so far (excluding the last, empty one).
	Chunks int64
}

type chunkState uint8

const (
	csSize chunkState = iota
	csExt
	csSizeLF
	csData
	csDataCR
	csDataLF
	csTrailer
	csDone
)

// ErrChunkedEnd is returned by Decode when the terminating zero-length chunk
// (and trailer) has been read: the response body is complete.
var ErrChunkedEnd = errors.New("chunked: end of body")

const maxChunkSize = 1 << 40

// Decode consumes p and calls sink with every payload piece it contains.
func (d *ChunkedDecoder) Decode(p []byte, sink func([]byte)) error {
	for len(p) > 0 {
		switch d.state {
		case csData:
			n := int64(len(p))
			if n > d.size {
				n = d.size
			}
			sink(p[:n])
			p = p[n:]
			d.size -= n
			if d.size == 0 {
				d.state = csDataCR
			}
		case csSize:
			if !d.sawDigit {
				// Fast path: a complete "<hex>\r\n" size line.
				if n, size, ok := hexLine(p); ok {
					p = p[n:]
					d.size = size
					d.sawDigit = true
					if err := d.endSizeLine(); err != nil {
						return err
					}
					continue
				}
			}
			c := p[0]
			p = p[1:]
			switch {
			case c >= '0' && c <= '9':
				d.addDigit(int64(c - '0'))
			case c >= 'a' && c <= 'f':
				d.addDigit(int64(c-'a') + 10)
			case c >= 'A' && c <= 'F':
				d.addDigit(int64(c-'A') + 10)
			case c == ';' || c == ' ' || c == '\t':
				d.state = csExt
			case c == '\r':
				d.state = csSizeLF
			case c == '\n':
				if err := d.endSizeLine(); err != nil {
					return err
				}
			default:
				return fmt.Errorf("chunked: invalid byte %q in chunk size", c)
			}
			if d.size > maxChunkSize {
				return errors.New("chunked: chunk too large")
			}
		case csExt:
			c := p[0]
			p = p[1:]
			if c == '\n' {
				if err := d.endSizeLine(); err != nil {
					return err
				}
			}
		case csSizeLF:
			c := p[0]
			p = p[1:]
			if c != '\n' {
				return errors.New("chunked: missing LF after chunk size")
			}
			if err := d.endSizeLine(); err != nil {
				return err
			}
		case csDataCR:
			if len(p) >= 2 && p[0] == '\r' && p[1] == '\n' {
				p = p[2:]
				d.state = csSize
				continue
			}
			c := p[0]
			p = p[1:]
			switch c {
			case '\r':
				d.state = csDataLF
			case '\n':
				d.state = csSize
			default:
				return errors.New("chunked: missing CRLF after chunk data")
			}
		case csDataLF:
			c := p[0]
			p = p[1:]
			if c != '\n' {
				return errors.New("chunked: missing LF after chunk data")
			}
			d.state = csSize
		case csTrailer:
			c := p[0]
			p = p[1:]
			switch c {
			case '\n':
				if d.trailerNL {
					d.state = csDone
					return ErrChunkedEnd
				}
				d.trailerNL = true
			case '\r':
			default:
				d.trailerNL = false
			}
		case csDone:
			return ErrChunkedEnd
		}
	}
	return nil
}

func (d *ChunkedDecoder) addDigit(v int64) {
	d.size = d.size<<4 | v
	d.sawDigit = true
}

func (d *ChunkedDecoder) endSizeLine() error {
	if !d.sawDigit {
		return errors.New("chunked: empty chunk size")
	}
	d.sawDigit = false
	if d.size == 0 {
		d.state = csTrailer
		d.trailerNL = true
		return nil
	}
	d.Chunks++
	d.state = csData
	return nil
}

// hexLine parses "<hex digits>\r\n" at the start of p (no extensions) and
// returns the bytes consumed and the value.
func hexLine(p []byte) (n int, v int64, ok bool) {
	for n < len(p) && n < 11 {
		c := p[n]
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			if n > 0 && c == '\r' && n+1 < len(p) && p[n+1] == '\n' {
				return n + 2, v, true
			}
			return 0, 0, false
		}
		v = v<<4 | int64(d)
		n++
	}
	return 0, 0, false
}
