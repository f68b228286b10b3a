package server

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/goccy/go-json/jsontext"
)

// Errors for bodies that are not events; each becomes a 400 whose message
// is the error's text.
var (
	errEmptyBody = errors.New("empty body")
	errNotObject = errors.New("body must be a JSON object")
)

// formatOptions validate strictly (RFC 8259 grammar, valid UTF-8 in the raw
// bytes and in \u escapes, nothing but whitespace after the value) and
// compact without re-encoding: strings and numbers are kept byte for byte,
// and duplicate names are allowed, as RFC 8259 allows them.
var formatOptions = []jsontext.Options{
	jsontext.AllowDuplicateNames(true),
	jsontext.AllowInvalidUTF8(false),
	jsontext.PreserveRawStrings(true),
}

// eventBuilder turns a POST body into an event's payload: the body validated,
// compacted and enriched with the producer's address. It is immutable and
// safe for concurrent use.
type eventBuilder struct {
	name   string // enrichment field name; "" turns enrichment off
	quoted []byte // name as a JSON string, quotes included
}

func newEventBuilder(field string) (eventBuilder, error) {
	if field == "" {
		return eventBuilder{}, nil
	}
	q, err := jsontext.AppendQuote(nil, field)
	if err != nil {
		return eventBuilder{}, fmt.Errorf("ip field %q: %w", field, err)
	}
	return eventBuilder{name: field, quoted: q}, nil
}

// payloadSize returns a capacity that always holds the payload built from a
// body of n bytes: compaction only shortens the body.
func (b *eventBuilder) payloadSize(n int) int {
	return n + len(b.quoted) + len(`,:"`) + len(`"`) + maxIPLen
}

// maxIPLen is the longest text form of an IP address without a zone
// (an IPv4-mapped IPv6 address such as ffff:ffff:...:255.255.255.255).
const maxIPLen = len("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255")

// appendPayload appends to dst the compact JSON of body, with the enrichment
// field set to ip, and returns it. On error it returns dst unchanged. It
// allocates nothing when dst has payloadSize(len(body)) spare capacity.
func (b *eventBuilder) appendPayload(dst, body []byte, ip netip.Addr) ([]byte, error) {
	if len(bytes.TrimLeft(body, " \t\r\n")) == 0 {
		return dst, errEmptyBody
	}
	start := len(dst)
	out, err := jsontext.AppendFormat(dst, body, formatOptions...)
	if err != nil {
		return dst, fmt.Errorf("invalid JSON: %s", strings.TrimPrefix(err.Error(), "jsontext: "))
	}
	if out[start] != '{' {
		return dst, errNotObject
	}
	if b.quoted != nil {
		obj := removeMember(out[start:], b.quoted, b.name)
		out = out[:start+len(obj)-1] // drop the closing brace
		if len(obj) > 2 {
			out = append(out, ',')
		}
		out = append(out, b.quoted...)
		out = append(out, ':', '"')
		out = ip.AppendTo(out)
		out = append(out, '"', '}')
	}
	return out, nil
}

// removeMember removes, in place, every top-level member of the compact JSON
// object obj whose name is name (quoted is its plain JSON-quoted form), and
// returns the shortened object. obj must be valid compact JSON.
func removeMember(obj, quoted []byte, name string) []byte {
	if !bytes.Contains(obj, quoted) && bytes.IndexByte(obj, '\\') < 0 {
		return obj // fast path: the name appears nowhere, not even escaped
	}
	i := 1 // after '{'
	for i < len(obj)-1 {
		keyEnd := skipString(obj, i)
		valEnd := skipValue(obj, keyEnd+1) // after the ':'
		if !nameIs(obj[i:keyEnd], quoted, name) {
			if obj[valEnd] != ',' {
				break
			}
			i = valEnd + 1
			continue
		}
		switch {
		case obj[valEnd] == ',': // not the last member: drop it and its comma
			obj = append(obj[:i], obj[valEnd+1:]...)
		case i > 1: // the last of several: drop the comma before it
			return append(obj[:i-1], obj[valEnd:]...)
		default: // the only member
			return append(obj[:i], obj[valEnd:]...)
		}
	}
	return obj
}

// nameIs reports whether the JSON string key (quotes included) denotes name.
func nameIs(key, quoted []byte, name string) bool {
	if bytes.Equal(key, quoted) {
		return true
	}
	if bytes.IndexByte(key, '\\') < 0 {
		return false
	}
	// Escaped spelling, e.g. "user\u005fip": compare the decoded name.
	// Rare, so the allocation does not matter.
	var buf [64]byte
	dec, err := jsontext.AppendUnquote(buf[:0], key)
	return err == nil && string(dec) == name
}

// skipString returns the index just after the JSON string starting at b[i].
func skipString(b []byte, i int) int {
	j := i + 1
	for {
		q := j + bytes.IndexByte(b[j:], '"')
		// The quote ends the string unless an odd number of backslashes
		// escapes it.
		n := 0
		for p := q - 1; b[p] == '\\'; p-- {
			n++
		}
		if n%2 == 0 {
			return q + 1
		}
		j = q + 1
	}
}

// skipValue returns the index just after the compact JSON value at b[i].
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for j := i; ; j++ {
			switch b[j] {
			case '"':
				j = skipString(b, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
	default: // number, true, false, null
		j := i
		for b[j] != ',' && b[j] != '}' && b[j] != ']' {
			j++
		}
		return j
	}
}
