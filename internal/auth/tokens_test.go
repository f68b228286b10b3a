package auth_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/auth"
)

func parse(tb testing.TB, v string) *auth.Tokens {
	tb.Helper()
	ts, err := auth.ParseTokens(v)
	if err != nil {
		tb.Fatalf("ParseTokens(%q): %v", v, err)
	}
	return ts
}

func TestParseTokens(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in      string
		enabled bool
		n       int
		match   []string
		reject  []string
	}{
		{in: "", reject: []string{"", "x"}},
		{in: "   ", reject: []string{"", " "}},
		{in: "s3cret", enabled: true, n: 1, match: []string{"s3cret"}, reject: []string{"", "s3cre", "s3cret ", "S3CRET"}},
		{in: " new , old ", enabled: true, n: 2, match: []string{"new", "old"}, reject: []string{" new", "new,old", "ol"}},
		{in: "a,a,b", enabled: true, n: 2, match: []string{"a", "b"}, reject: []string{"c"}},
		{in: "héllo,tok+en/=", enabled: true, n: 2, match: []string{"héllo", "tok+en/="}},
	} {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			ts := parse(t, tc.in)
			if ts.Enabled() != tc.enabled || ts.Len() != tc.n {
				t.Errorf("Enabled, Len = %v, %d; want %v, %d", ts.Enabled(), ts.Len(), tc.enabled, tc.n)
			}
			for _, c := range tc.match {
				if !ts.Match([]byte(c)) {
					t.Errorf("Match(%q) = false, want true", c)
				}
			}
			for _, c := range tc.reject {
				if ts.Match([]byte(c)) {
					t.Errorf("Match(%q) = true, want false", c)
				}
			}
		})
	}
}

func TestParseTokensErrors(t *testing.T) {
	t.Parallel()
	const secret = "Sup3rSecretValue"
	for _, tc := range []struct {
		in, want string
	}{
		{"a,,b", "item 2: empty"},
		{"a,", "item 2: empty"},
		{",a", "item 1: empty"},
		{secret + ", " + secret + " x", "item 2: whitespace at byte 16"},
		{secret + "\tx", "item 1: whitespace at byte 16"},
		{secret + "\x00", "item 1: control character at byte 16"},
		{secret + "\x7f", "item 1: control character at byte 16"},
		{"ok," + secret + "\u0085x", "item 2: whitespace at byte 16"},
		{secret + "\u00a0x", "item 1: whitespace at byte 16"},
		{secret + "\xff", "item 1: invalid UTF-8 at byte 16"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			t.Parallel()
			ts, err := auth.ParseTokens(tc.in)
			if !errors.Is(err, auth.ErrInvalidToken) || ts != nil {
				t.Fatalf("ParseTokens(%q) = %v, %v; want an error wrapping ErrInvalidToken", tc.in, ts, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q reveals the token", err)
			}
		})
	}
}

func TestNilTokens(t *testing.T) {
	t.Parallel()
	var ts *auth.Tokens
	if ts.Enabled() || ts.Len() != 0 || ts.Match(nil) || ts.Match([]byte("x")) {
		t.Error("a nil *Tokens is enabled or matches")
	}
}

func TestTokensPrintNoSecret(t *testing.T) {
	t.Parallel()
	ts := parse(t, "Sup3rSecretValue,other")
	for _, s := range []string{
		fmt.Sprint(ts), fmt.Sprintf("%v %+v %s %#v", ts, ts, ts, ts),
		fmt.Sprint(*ts), fmt.Sprintf("%v %+v %s %#v", *ts, *ts, *ts, *ts),
	} {
		if strings.Contains(s, "Sup3r") || strings.Contains(s, "[") || !strings.Contains(s, "2 token(s)") {
			t.Errorf("printed as %q", s)
		}
	}
}

// TestMatchDoesNotAllocate checks Match on the request path: for the first
// token, the last, none and the empty candidate. (Its constant time rests on
// crypto/subtle and on comparing every digest, which a test cannot show
// reliably on a shared machine; the code says why.)
func TestMatchDoesNotAllocate(t *testing.T) {
	ts := parse(t, "first,second,third")
	for _, c := range []string{"first", "third", "nope", ""} {
		cand := []byte(c)
		if n := testing.AllocsPerRun(100, func() { _ = ts.Match(cand) }); n != 0 {
			t.Errorf("Match(%q) allocates %v times, want 0", c, n)
		}
	}
}
