package load

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

func firstLine(b []byte) string {
	if i := bytes.IndexByte(b, '\r'); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// parseResponseHead parses the status line and the headers that matter.
func parseResponseHead(h []byte) (status int, chunked bool, err error) {
	line, rest, _ := bytes.Cut(h, []byte("\r\n"))
	f := strings.Fields(string(line))
	if len(f) < 2 || !strings.HasPrefix(f[0], "HTTP/1.") {
		return 0, false, fmt.Errorf("bad HTTP status line %q", line)
	}
	status, err = strconv.Atoi(f[1])
	if err != nil {
		return 0, false, fmt.Errorf("bad HTTP status line %q", line)
	}
	for len(rest) > 0 {
		var hl []byte
		hl, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		k, v, ok := bytes.Cut(hl, []byte(":"))
		if !ok {
			continue
		}
		if strings.EqualFold(string(bytes.TrimSpace(k)), "Transfer-Encoding") &&
			strings.Contains(strings.ToLower(string(v)), "chunked") {
			chunked = true
		}
	}
	return status, chunked, nil
}
