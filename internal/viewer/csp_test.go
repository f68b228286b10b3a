package viewer

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"regexp"
	"strings"
	"testing"
)

func hashOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

func TestPolicyFor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		page       string
		wantScript string // the script-src directive
		wantStyle  string // the style-src directive
		wantErr    error
	}{
		{
			name:       "script and style",
			page:       "<style>\nb{}\n</style><p>x</p><script>\ngo()\n</script>",
			wantScript: "script-src " + hashOf("\ngo()\n"),
			wantStyle:  "style-src " + hashOf("\nb{}\n"),
		},
		{
			name:       "two scripts, no style",
			page:       "<script>a()</script><script>b()</script>",
			wantScript: "script-src " + hashOf("a()") + " " + hashOf("b()"),
			wantStyle:  "style-src 'none'",
		},
		{name: "no script", page: "<style>b{}</style>", wantErr: errNoScript},
		{name: "script with attributes is not inline code", page: `<script src="x.js"></script>`, wantErr: errNoScript},
		{name: "unclosed script", page: "<script>a()", wantErr: errUnclosed},
		{name: "unclosed style", page: "<script>a()</script><style>b{}", wantErr: errUnclosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := policyFor([]byte(tc.page))
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("policyFor: got %q, %v; want %v", got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			directives := strings.Split(got, "; ")
			for _, want := range []string{tc.wantScript, tc.wantStyle, "default-src 'none'", "connect-src 'self'",
				"base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'"} {
				if !contains(directives, want) {
					t.Errorf("policy %q lacks the directive %q", got, want)
				}
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestEmbeddedPageFitsThePolicy checks what the policy forbids is not in
// the page: it would be blocked in the browser, silently but for a console
// message.
func TestEmbeddedPageFitsThePolicy(t *testing.T) {
	t.Parallel()
	html := string(page)
	if n := strings.Count(html, "<script"); n != 1 {
		t.Errorf("the page has %d <script elements, want exactly one inline script", n)
	}
	if n := strings.Count(html, "<style"); n != 1 {
		t.Errorf("the page has %d <style elements, want exactly one", n)
	}
	// Event-handler and style attributes, and anything loaded from elsewhere.
	for _, bad := range []*regexp.Regexp{
		regexp.MustCompile(`<[a-z][^>]*\son[a-z]+\s*=`),
		regexp.MustCompile(`<[a-z][^>]*\sstyle\s*=`),
		regexp.MustCompile(`\s(src|href)\s*=\s*"(https?:)?//`),
		regexp.MustCompile(`@import|url\(`),
	} {
		if m := bad.FindString(html); m != "" {
			t.Errorf("the page has %q, which the policy blocks or which loads something from elsewhere", m)
		}
	}
	if !strings.Contains(csp, hashOf(strings.SplitN(strings.SplitN(html, "<script>", 2)[1], "</script>", 2)[0])) {
		t.Errorf("policy %q does not allow the page's script", csp)
	}
}

func TestETagMatches(t *testing.T) {
	t.Parallel()
	const tag = `"abc"`
	tests := []struct {
		header string
		want   bool
	}{
		{`"abc"`, true},
		{`W/"abc"`, true},
		{`*`, true},
		{` "x", "abc" `, true},
		{`"x",W/"abc"`, true},
		{`"abcd"`, false},
		{`abc`, false},
		{`"ab"c"`, false},
		{``, false},
		{`,,`, false},
		{`W/`, false},
		{`"x" , * `, true},
	}
	for _, tc := range tests {
		if got := etagMatches([]byte(tc.header), tag); got != tc.want {
			t.Errorf("etagMatches(%q, %q) = %v, want %v", tc.header, tag, got, tc.want)
		}
	}
}
