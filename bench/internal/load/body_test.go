package load

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

func TestBodySizeAndPatch(t *testing.T) {
	for _, size := range []int{0, 50, MinBodySize, 128, 1024, 4096} {
		b := NewBody("abcd1234", 7, size)
		want := size
		if want < MinBodySize {
			want = MinBodySize
		}
		if got := len(b.Bytes()); got != want {
			t.Fatalf("size %d: body is %d bytes, want %d", size, got, want)
		}
		before := len(b.Bytes())
		for _, seq := range []uint64{0, 1, 42, 1 << 40, math.MaxUint64} {
			ts := int64(1_764_000_000_123_456_789)
			b.Set(seq, ts)
			if len(b.Bytes()) != before {
				t.Fatal("Set changed the length")
			}
			var m map[string]any
			dec := json.NewDecoder(strings.NewReader(string(b.Bytes())))
			dec.UseNumber()
			if err := dec.Decode(&m); err != nil {
				t.Fatalf("size %d seq %d: invalid JSON %q: %v", size, seq, b.Bytes(), err)
			}
			if m["run"] != "abcd1234" || m["pid"].(json.Number).String() != "7" {
				t.Fatalf("bad fields %v", m)
			}
			if got := m["seq"].(json.Number).String(); got != uintStr(seq) {
				t.Fatalf("seq %s, want %d", got, seq)
			}
			if got := m["ts"].(json.Number).String(); got != "1764000000123456789" {
				t.Fatalf("ts %s", got)
			}
		}
	}
}

func uintStr(v uint64) string {
	if v == 0 {
		return "0"
	}
	var b []byte
	for v > 0 {
		b = append([]byte{byte('0' + v%10)}, b...)
		v /= 10
	}
	return string(b)
}

func TestParseEventShapes(t *testing.T) {
	b := NewBody("abcd1234", 3, 200)
	b.Set(99, 1_764_000_000_000_000_123)
	own := string(b.Bytes())
	cases := map[string]string{
		"as sent":             own,
		"service appended":    own[:len(own)-1] + `,"user_ip":"127.0.0.1"}`,
		"baseline sorted":     `{"pad":"xx\"x","pid":3,"run":"abcd1234","seq":99,"ts":1764000000000000123,"user_ip":"127.0.0.1"}`,
		"spaces":              `{ "run" : "abcd1234" , "pid" : 3, "seq":  99 , "ts": 1764000000000000123 }`,
		"nested first":        `{"meta":{"a":[1,{"b":"}"}]},"run":"abcd1234","pid":3,"seq":99,"ts":1764000000000000123}`,
		"centrifugo envelope": `{"channel":"bench","pub":{"data":` + own + `,"offset":7}}`,
		"envelope, tags first": `{"channel":"bench","pub":{"tags":{"run":"no"},"info":{"user":"u"},"data":` +
			`{"pad":"x","run":"abcd1234","pid":3,"seq":99,"ts":1764000000000000123}}}`,
		"deepest allowed": `{"a":{"b":{"c":{"d":{"run":"abcd1234","pid":3,"seq":99,"ts":1764000000000000123}}}}}`,
	}
	for name, line := range cases {
		f, ok := parseEvent([]byte(line))
		if !ok || string(f.run) != "abcd1234" || f.pid != 3 || f.seq != 99 || f.ts != 1764000000000000123 {
			t.Errorf("%s: got %+v ok=%v", name, f, ok)
		}
	}
	// Float re-encoding loses ns precision but must still parse.
	f, ok := parseEvent([]byte(`{"run":"r","pid":1,"seq":2,"ts":1.764e+18}`))
	if !ok || f.ts != 1764000000000000000 {
		t.Errorf("exponent form: %+v %v", f, ok)
	}
	for _, bad := range []string{``, `[]`, `{"run":"r","pid":1}`, `{"run":"r","pid":x,"seq":1,"ts":1}`, `{"run":"r`,
		`{"connect":{"client":"c","subs":{"bench":{}}}}`, `{}`, `{"a":{"run":"r","pid":1},"seq":2,"ts":3}`,
		`{"a":{"b":{"c":{"d":{"e":{"run":"r","pid":1,"seq":2,"ts":3}}}}}}`, `{"a":{"run":"r"`, `{"a":1 "b":2}`} {
		if _, ok := parseEvent([]byte(bad)); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestParseMissed(t *testing.T) {
	if got := parseMissed([]byte(`{"missed": 12}`)); got != 12 {
		t.Fatal(got)
	}
	if got := parseMissed([]byte(`{}`)); got != 0 {
		t.Fatal(got)
	}
}
