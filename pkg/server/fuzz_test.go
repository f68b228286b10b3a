package server

import (
	"bytes"
	encjson "encoding/json"
	"net/netip"
	"reflect"
	"regexp"
	"testing"
	"unicode/utf8"
)

// escapedSurrogate matches a \u escape of a UTF-16 surrogate. encoding/json
// accepts lone ones (replacing them); this service refuses them, as they
// cannot be encoded in UTF-8.
var escapedSurrogate = regexp.MustCompile(`\\u[dD][89a-fA-F][0-9a-fA-F]{2}`)

// FuzzBuild checks the payload and frame builders against encoding/json: every body the
// builder accepts is one JSON object, framed as one SSE data line, whose
// members are the body's (user_ip replaced); every body it refuses is one
// encoding/json or UTF-8 validation would refuse too.
func FuzzBuild(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"a":1}`, ` { "user_ip" : "x" , "b" : [1, {"c": "d"}] } `, `{"user\u005fip":1}`,
		`{"s":"\"\\\/\b\f\n\r\t\u00e9"}`, `{"n":12345678901234567890}`, `null`, `[]`, `{"a":1}x`, "{\"a\":\"\xff\"}",
	} {
		f.Add([]byte(s))
	}
	b, err := newEventBuilder("user_ip")
	if err != nil {
		f.Fatal(err)
	}
	ip := netip.MustParseAddr("192.0.2.1")
	sp := newRunSpace()
	f.Fuzz(func(t *testing.T, body []byte) {
		var frame []byte
		room := frameHead{}.room()
		p, err := b.appendPayload(newFrameBuf(room, b.payloadSize(len(body))), body, ip)
		if err == nil {
			frame = finishFrame(p, room, sp, 7, frameHead{})
		}
		var want map[string]any
		stdErr := encjson.Unmarshal(body, &want)
		if err != nil {
			if stdErr == nil && utf8.Valid(body) && want != nil && !escapedSurrogate.Match(body) {
				t.Fatalf("refused %q (%v), which encoding/json accepts as an object", body, err)
			}
			return
		}
		if stdErr != nil || want == nil {
			t.Fatalf("accepted %q, which is not a JSON object (%v)", body, stdErr)
		}
		head := "id: " + string(sp.prefix) + "7\ndata: "
		if !bytes.HasPrefix(frame, []byte(head)) || !bytes.HasSuffix(frame, []byte("\n\n")) {
			t.Fatalf("frame %q is not one event block", frame)
		}
		data := frame[len(head) : len(frame)-2]
		if bytes.ContainsAny(data, "\r\n") {
			t.Fatalf("frame %q spans several lines", frame)
		}
		var got map[string]any
		if err := encjson.Unmarshal(data, &got); err != nil {
			t.Fatalf("frame data %q is not JSON: %v", data, err)
		}
		want["user_ip"] = "192.0.2.1"
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("body %q\nframe %q\ngot  %v\nwant %v", body, data, got, want)
		}
		if n := bytes.Count(data, []byte(`"user_ip":"192.0.2.1"`)); n != 1 {
			t.Fatalf("user_ip appears %d times in %q", n, data)
		}
	})
}
