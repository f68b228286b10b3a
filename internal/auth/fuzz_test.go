package auth_test

import (
	"bufio"
	"bytes"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/auth"
)

// errShape is every message ParseTokens may return: a position and a
// reason, never any of the value's text.
var errShape = regexp.MustCompile(`^auth: invalid token: item \d+: (empty|(whitespace|control character|invalid UTF-8) at byte \d+)$`)

func FuzzParseTokens(f *testing.F) {
	for _, s := range []string{"", "a", "new,old", " a , b ", "a,,b", "a b", "a\x00", "\xff", "a,a", "é,\u00a0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		ts, err := auth.ParseTokens(v)
		if err != nil {
			if !errors.Is(err, auth.ErrInvalidToken) || ts != nil || !errShape.MatchString(err.Error()) {
				t.Fatalf("ParseTokens(%q) = %v, %q", v, ts, err)
			}
			return
		}
		items := strings.Split(strings.TrimSpace(v), ",")
		if !ts.Enabled() {
			if strings.TrimSpace(v) != "" {
				t.Fatalf("ParseTokens(%q) is disabled", v)
			}
			return
		}
		set := make(map[string]bool, len(items))
		for _, item := range items {
			set[strings.TrimSpace(item)] = true
		}
		if ts.Len() != len(set) {
			t.Fatalf("ParseTokens(%q) holds %d tokens, want %d", v, ts.Len(), len(set))
		}
		for item := range set {
			if !ts.Match([]byte(item)) {
				t.Fatalf("ParseTokens(%q) does not match its item %q", v, item)
			}
			if other := item + "x"; ts.Match([]byte(other)) != set[other] {
				t.Fatalf("ParseTokens(%q) matches %q", v, other)
			}
		}
	})
}

func FuzzBearer(f *testing.F) {
	for _, s := range []string{"Bearer abc", "bearer\tabc ", "Bearer", "Bearer ", "Basic abc", "", "BEARER  a b "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		got, ok := auth.Bearer([]byte(v))
		// The reference: scheme, blank, token, with strings' functions.
		trimmed := strings.Trim(v, " \t")
		want, wantOK := "", false
		if len(trimmed) > 6 && strings.EqualFold(trimmed[:6], "bearer") && (trimmed[6] == ' ' || trimmed[6] == '\t') {
			want = strings.Trim(trimmed[6:], " \t")
			wantOK = want != ""
		}
		if ok != wantOK || (ok && string(got) != want) {
			t.Fatalf("Bearer(%q) = %q, %v; want %q, %v", v, got, ok, want, wantOK)
		}
	})
}

func FuzzListenerToken(f *testing.F) {
	f.Add("/events?token=q", "Bearer h", "dispatcher_token=c")
	f.Add("/events?a=1&%74oken=q+x", "", "a=1; dispatcher_token=\"c\"")
	f.Add("/events", "Basic x", "dispatcher_token=")
	f.Add("/events?token=", "Bearer ", "")
	f.Fuzz(func(t *testing.T, target, authorization, cookie string) {
		raw := "GET " + target + " HTTP/1.1\r\nHost: x\r\nAuthorization: " + authorization + "\r\nCookie: " + cookie + "\r\n\r\n"
		var req fasthttp.Request
		if err := req.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
			return // not a request fasthttp would serve
		}
		got := auth.ListenerToken(&req)
		// The token comes from exactly one of the three places, in order.
		bearer, hasBearer := auth.Bearer(req.Header.Peek(fasthttp.HeaderAuthorization))
		query := req.URI().QueryArgs().Peek(auth.QueryParam)
		var want []byte
		switch {
		case hasBearer:
			want = bearer
		case len(query) > 0:
			want = query
		default:
			want = req.Header.Cookie(auth.CookieName)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("ListenerToken(%q) = %q, want %q", raw, got, want)
		}
	})
}

func FuzzAppendRedactedURI(f *testing.F) {
	for _, s := range []string{
		"/events", "/events?token=s", "/events?a=1&token=s&b", "/events?%74oken=s", "/events?TOKEN=s#x",
		"/events?tok%=s", "/a?token=a=b&&token", "?", "/p?%7", "/p?token%3ds=x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		out := auth.AppendRedactedURI(nil, []byte(uri))
		if again := auth.AppendRedactedURI(nil, out); !bytes.Equal(again, out) {
			t.Fatalf("redacting %q twice: %q then %q", uri, out, again)
		}
		q := strings.IndexByte(uri, '?')
		if q < 0 {
			if string(out) != uri {
				t.Fatalf("AppendRedactedURI(%q) = %q, want it unchanged", uri, out)
			}
			return
		}
		if !bytes.HasPrefix(out, []byte(uri[:q+1])) {
			t.Fatalf("AppendRedactedURI(%q) = %q changed what precedes the query", uri, out)
		}
		// The reference: each '&'-separated parameter whose name fasthttp
		// decodes to "token" (any case) and that has a value gets REDACTED.
		parts := strings.Split(uri[q+1:], "&")
		for i, p := range parts {
			eq := strings.IndexByte(p, '=')
			if eq >= 0 && strings.EqualFold(decodedName(p), auth.QueryParam) {
				parts[i] = p[:eq+1] + auth.Redacted
			}
		}
		if want := uri[:q+1] + strings.Join(parts, "&"); string(out) != want {
			t.Fatalf("AppendRedactedURI(%q) = %q, want %q", uri, out, want)
		}
		// And what fasthttp reads from the output holds no token value.
		var red fasthttp.Args
		red.ParseBytes(out[q+1:])
		for k, v := range red.All() {
			if strings.EqualFold(string(k), auth.QueryParam) && len(v) > 0 && string(v) != auth.Redacted {
				t.Fatalf("AppendRedactedURI(%q) = %q: fasthttp reads %s=%q", uri, out, k, v)
			}
		}
	})
}

// decodedName returns the name of one query parameter as fasthttp decodes
// it.
func decodedName(param string) string {
	var a fasthttp.Args
	a.Parse(param)
	for k := range a.All() {
		return string(k)
	}
	return ""
}

// FuzzRedactText: whatever surrounds it, a credential in a header line, a
// token query parameter or a known secret never survives RedactText, and
// the text around it does.
func FuzzRedactText(f *testing.F) {
	for _, s := range []string{"", "GET / HTTP/1.1\\r\\nHost: x", `"quoted`, "a=b&c=d", "Cookie", "\\", "?token"} {
		f.Add(s, "S3CRETvalue", uint8(0))
	}
	f.Fuzz(func(t *testing.T, around, secret string, where uint8) {
		if len(secret) < 8 || strings.ContainsAny(secret, "\r\n\\\"'&;# \t%=") || strings.Contains(around, secret) {
			return
		}
		forms := []string{
			"\r\nAuthorization: Bearer " + secret + "\r\n",
			`\r\nCookie: dispatcher_token=` + secret + `\r\n`,
			"?token=" + secret + "&",
			";token=" + secret + " ",
		}
		in := around + forms[int(where)%len(forms)] + around
		if got := auth.RedactText([]byte(in)); strings.Contains(got, secret) {
			t.Fatalf("RedactText(%q) = %q keeps the secret", in, got)
		}
		if got := auth.RedactText([]byte(around+secret+around), []byte(secret)); strings.Contains(got, secret) {
			t.Fatalf("a known secret survived: %q", got)
		}
	})
}
