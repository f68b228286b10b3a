package filter_test

import (
	"testing"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/filter"
)

// TestMatches checks what one filter selects: each kind of field, paths,
// or/and, escapes, duplicate keys and whitespace.
func TestMatches(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		event string
		where []string
		want  bool
	}{
		// Strings.
		{"string", player, []string{"type:error"}, true},
		{"string other", player, []string{"type:warning"}, false},
		{"string case-sensitive", player, []string{"type:Error"}, false},
		{"string prefix", player, []string{"type:err"}, false},
		{"string longer", player, []string{"type:errors"}, false},
		{"user_ip", player, []string{"user_ip:1.2.3.4"}, true},
		{"value with colons", player, []string{"media.id:urn:rts:video:1"}, true},
		{"empty string", `{"s":""}`, []string{"s:"}, true},
		{"empty value vs non-empty", `{"s":"x"}`, []string{"s:"}, false},
		{"empty value vs null", `{"s":null}`, []string{"s:"}, false},
		{"unicode", `{"s":"café ☕ 𝄞"}`, []string{"s:café ☕ 𝄞"}, true},
		{"unicode escaped in event", `{"s":"caf\u00e9 \ud834\udd1e"}`, []string{"s:café 𝄞"}, true},
		{"escaped quote", `{"s":"say \"hi\""}`, []string{`s:say "hi"`}, true},
		{"escaped slash", `{"u":"a\/b"}`, []string{"u:a/b"}, true},
		{"escaped slash not literal", `{"u":"a\/b"}`, []string{`u:a\/b`}, false},
		{"escaped backslash", `{"u":"a\\b"}`, []string{`u:a\b`}, true},
		{"escaped newline", `{"u":"a\nb"}`, []string{"u:a\nb"}, true},
		{"lone surrogate", `{"u":"\ud800"}`, []string{"u:\uFFFD"}, true},
		// Literals: their text, exactly.
		{"number", player, []string{"code:404"}, true},
		{"number as string", `{"code":"404"}`, []string{"code:404"}, true},
		{"number other text", `{"code":404.0}`, []string{"code:404"}, false},
		{"negative zero", `{"n":-0}`, []string{"n:-0"}, true},
		{"negative zero vs zero", `{"n":-0}`, []string{"n:0"}, false},
		{"exponent", `{"n":1e3}`, []string{"n:1e3"}, true},
		{"exponent vs value", `{"n":1e3}`, []string{"n:1000"}, false},
		{"trailing zero", `{"n":1.50}`, []string{"n:1.50"}, true},
		{"trailing zero vs value", `{"n":1.50}`, []string{"n:1.5"}, false},
		{"big number", `{"n":123456789012345678901234567890}`, []string{"n:123456789012345678901234567890"}, true},
		{"false", player, []string{"ok:false"}, true},
		{"false as string", `{"ok":"false"}`, []string{"ok:false"}, true},
		{"true", `{"ok":true}`, []string{"ok:true"}, true},
		{"true vs string true", `{"ok":"true"}`, []string{"ok:true"}, true},
		{"true vs false", `{"ok":true}`, []string{"ok:false"}, false},
		{"null", `{"x":null}`, []string{"x:null"}, true},
		{"null as string", `{"x":"null"}`, []string{"x:null"}, true},
		// Objects and arrays never match.
		{"object", `{"o":{}}`, []string{"o:{}"}, false},
		{"array", `{"a":[1]}`, []string{"a:[1]"}, false},
		{"array element", `{"a":[1]}`, []string{"a:1"}, false},
		{"array of objects", `{"a":[{"b":1}]}`, []string{"a.b:1"}, false},
		// Paths.
		{"nested", player, []string{"media.id:urn:rts:video:1"}, true},
		{"nested literal", player, []string{"media.live:false"}, true},
		{"deep", `{"a":{"b":{"c":{"d":"x"}}}}`, []string{"a.b.c.d:x"}, true},
		{"missing", player, []string{"nope:1"}, false},
		{"missing nested", player, []string{"media.nope:1"}, false},
		{"through a string", `{"a":"b"}`, []string{"a.b:1"}, false},
		{"through null", `{"a":null}`, []string{"a.b:null"}, false},
		{"not top-level", player, []string{"id:urn:rts:video:1"}, false},
		{"dotted key", `{"a.b":"1","a":{"b":"2"}}`, []string{`a\.b:1`}, true},
		{"dotted key vs nested", `{"a.b":"1","a":{"b":"2"}}`, []string{"a.b:1"}, false},
		{"nested vs dotted key", `{"a.b":"1","a":{"b":"2"}}`, []string{"a.b:2"}, true},
		{"colon key", `{"a:b":"1"}`, []string{`a\:b:1`}, true},
		{"backslash key", `{"a\\b":"1"}`, []string{`a\\b:1`}, true},
		{"escaped key in event", `{"\u0074ype":"error"}`, []string{"type:error"}, true},
		{"escaped nested key in event", `{"me\u0064ia":{"\u0069d":"x"}}`, []string{"media.id:x"}, true},
		{"key with escaped quote", `{"a\"b":"x"}`, []string{`a"b:x`}, true},
		{"empty key in event", `{"":"x"}`, []string{"a:x"}, false},
		{"unicode key", `{"clé":"x"}`, []string{"clé:x"}, true},
		// Duplicate keys: the last one wins.
		{"duplicate last", `{"t":"a","t":"b"}`, []string{"t:b"}, true},
		{"duplicate first", `{"t":"a","t":"b"}`, []string{"t:a"}, false},
		{"duplicate escaped", `{"t":"a","\u0074":"b"}`, []string{"t:a"}, false},
		{"duplicate parent", `{"m":{"id":"a"},"m":{"x":1}}`, []string{"m.id:a"}, false},
		{"duplicate parent both", `{"m":{"id":"a"},"m":{"id":"b"}}`, []string{"m.id:b"}, true},
		{"duplicate parent not object", `{"m":{"id":"a"},"m":1}`, []string{"m.id:a"}, false},
		{"duplicate child", `{"m":{"id":"a","id":"b"}}`, []string{"m.id:b"}, true},
		{"duplicate parent object later", `{"m":1,"m":{"id":"a"}}`, []string{"m.id:a"}, true},
		{"path and its prefix", `{"m":{"id":"a"}}`, []string{"m:x", "m.id:a"}, false},
		// Or and and.
		{"or first", player, []string{"type:error", "type:warning"}, true},
		{"or second", player, []string{"type:warning", "type:error"}, true},
		{"or none", player, []string{"type:warning", "type:info"}, false},
		{"and", player, []string{"type:error", "code:404"}, true},
		{"and one fails", player, []string{"type:error", "code:500"}, false},
		{"and with or", player, []string{"type:error", "type:warning", "code:500", "code:404"}, true},
		{"and with missing", player, []string{"type:error", "nope:x"}, false},
		{"duplicates", player, []string{"type:error", "type:error", "code:404", "code:404"}, true},
		// Whitespace and odd inputs.
		{"whitespace", " {\n\t\"type\" :\r \"error\" , \"m\" : { \"id\" : 1 } }\n", []string{"type:error", "m.id:1"}, true},
		{"not an object", `["type","error"]`, []string{"type:error"}, false},
		{"empty", ``, []string{"type:error"}, false},
		{"string event", `"type:error"`, []string{"type:error"}, false},
		{"value with skipped nesting", `{"x":[{"type":"no"},"}"],"type":"error"}`, []string{"type:error"}, true},
		{"nested same key", `{"x":{"type":"no"},"type":"error"}`, []string{"type:error"}, true},
		{"nested same key only", `{"x":{"type":"error"}}`, []string{"type:error"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, err := filter.Parse(tc.where, "", filter.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if got := f.Matches([]byte(tc.event), 1); got != tc.want {
				t.Errorf("Parse(%q).Matches(%s) = %v, want %v", tc.where, tc.event, got, tc.want)
			}
			// The same through a Set among filters that match nothing.
			other, err := filter.Parse([]string{"nothing:at all"}, "", filter.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			got := filter.NewSet([]*filter.Filter{other, f, nil, other}).Match([]byte(tc.event), 1, nil)
			if want := map[bool]int{true: 1, false: 0}[tc.want]; len(got) != want || want == 1 && got[0] != 1 {
				t.Errorf("Set.Match(%s) = %v, want [1] if %v", tc.event, got, tc.want)
			}
		})
	}
}

// TestMatchesSample checks a filter with a sample and where terms: an
// event must pass both.
func TestMatchesSample(t *testing.T) {
	t.Parallel()
	f, err := filter.Parse([]string{"type:error"}, "0.3", filter.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	kept := 0
	for id := range uint64(1000) {
		want := filter.Sampled(id, 0.3)
		if got := f.Matches([]byte(player), id); got != want {
			t.Fatalf("Matches(player, %d) = %v, want Sampled = %v", id, got, want)
		}
		if f.Matches([]byte(`{"type":"info"}`), id) {
			t.Fatalf("Matches(info, %d) = true", id)
		}
		if want {
			kept++
		}
	}
	if kept == 0 || kept == 1000 {
		t.Fatalf("the sample kept %d of 1000", kept)
	}
}
