package viewer

import (
	"bytes"
	"strings"
	"testing"
)

func FuzzETagMatches(f *testing.F) {
	for _, s := range []string{`"abc"`, `W/"abc"`, `*`, `"x", "abc"`, ``, `,`, `W/`, `"abc`, "\"abc\"\x00"} {
		f.Add(s)
	}
	const tag = `"abc"`
	f.Fuzz(func(t *testing.T, header string) {
		got := etagMatches([]byte(header), tag)
		// A match needs the tag or a lone * among the members.
		if got && !strings.Contains(header, tag) && !strings.Contains(header, "*") {
			t.Fatalf("etagMatches(%q) = true without the tag or *", header)
		}
		// The tag itself, with anything before it as another member, matches.
		if !etagMatches([]byte(header+","+tag), tag) {
			t.Fatalf("etagMatches(%q) = false", header+","+tag)
		}
	})
}

func FuzzPolicyFor(f *testing.F) {
	f.Add([]byte("<style>b{}</style><script>go()</script>"))
	f.Add([]byte("<script>a()</script><script>"))
	f.Add([]byte("<script></script>"))
	f.Add(page)
	f.Fuzz(func(t *testing.T, html []byte) {
		p, err := policyFor(html)
		if err != nil {
			return
		}
		if !bytes.Contains(html, []byte("<script>")) {
			t.Fatalf("policy %q for a page without an inline script", p)
		}
		if !strings.Contains(p, "script-src 'sha256-") || strings.Contains(p, "unsafe") {
			t.Fatalf("policy %q", p)
		}
	})
}
