package auth_test

import (
	"bufio"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/auth"
)

func TestRedactText(t *testing.T) {
	t.Parallel()
	const jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
	for _, tc := range []struct {
		name, in string
		secrets  []string
		gone     []string // must not appear
		kept     []string // must still appear
	}{
		{"header line", "GET / HTTP/1.1\r\nAuthorization: Bearer S3CRET\r\nHost: x\r\n",
			nil, []string{"S3CRET"}, []string{"Authorization:", "Host: x"}},
		{"quoted head", `error when reading request headers: cannot parse "POST / HTTP/1.1\r\nauthorization:Bearer S3CRET\r\nX: 1"`,
			nil, []string{"S3CRET"}, []string{`\r\nX: 1`}},
		{"cookie", `contents: "GET /events HTTP/1.1\r\nCookie: a=1; dispatcher_token=L1STEN\r\nBad header line"`,
			nil, []string{"L1STEN"}, []string{"Bad header line"}},
		{"proxy authorization", "Proxy-Authorization: Basic dXNlcjpwYXNz\n", nil, []string{"dXNlcjpwYXNz"}, nil},
		{"query token after a semicolon", "GET /events?a=1;token=L1STEN HTTP/1.1", nil, []string{"L1STEN"}, []string{"a=1;token="}},
		{"query token after an ampersand", "/events?topic=t&TOKEN=L1STEN&x=2", nil, []string{"L1STEN"}, []string{"x=2"}},
		{"encoded parameter name", "/events?%74oken=L1STEN", nil, []string{"L1STEN"}, nil},
		{"first parameter", "uri=/events?token=L1STEN#frag", nil, []string{"L1STEN"}, []string{"#frag"}},
		{"a parameter that only ends in token", "/events?mytoken=visible", nil, nil, []string{"mytoken=visible"}},
		{"JWT anywhere", "odd value " + jwt + " here", nil, []string{jwt, "c2lnbmF0dXJl"}, []string{"odd value", "here"}},
		{"known secret anywhere", "X-Custom: zzS3CRETzz", []string{"S3CRET", ""}, []string{"S3CRET"}, []string{"X-Custom"}},
		{"nothing to redact", "error when serving connection: timeout", nil, nil, []string{"error when serving connection: timeout"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			secrets := make([][]byte, 0, len(tc.secrets))
			for _, s := range tc.secrets {
				secrets = append(secrets, []byte(s))
			}
			got := auth.RedactText([]byte(tc.in), secrets...)
			for _, g := range tc.gone {
				if strings.Contains(got, g) {
					t.Errorf("%q still holds %q", got, g)
				}
			}
			for _, k := range tc.kept {
				if !strings.Contains(got, k) {
					t.Errorf("%q lost %q", got, k)
				}
			}
			if len(tc.gone) > 0 && !strings.Contains(got, auth.Redacted) {
				t.Errorf("%q: no %s marker", got, auth.Redacted)
			}
		})
	}
}

// TestRedactTextOfAHeadCutInTwo: fasthttp quotes a long request head it
// cannot parse by its first and last 200 bytes; wherever the cut falls in a
// credential (here a JSON Web Token in the Authorization header, the cookie
// and the query), no part of it survives. The second part used to begin
// with the end of a token, which neither a header's name nor a token's
// shape revealed.
func TestRedactTextOfAHeadCutInTwo(t *testing.T) {
	t.Parallel()
	const tok = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9." +
		"eyJleHAiOjE3OTY1NTc4MDcsInBpbGxhcmJveCI6eyJzdWJzY3JpYmUiOlsibG9nLioiXX0sInN1YiI6Imxpc3RlbmVyIn0." +
		"xdwbXiWAnZuAOapW_j52Oad66dU5ADqwNxstzoaiMWk"
	segments := strings.Split(tok, ".")
	for after := 0; after < 260; after++ {
		head := "GET /events?token=" + tok + " HTTP/1.1\r\nHost: x\r\n" +
			"Cookie: dispatcher_token=" + tok + "\r\nAuthorization: Bearer " + tok + "\r\n" +
			"X-After: " + strings.Repeat("a", after) + "\r\nContent-Length: x\r\n\r\n"
		var h fasthttp.RequestHeader
		err := h.Read(bufio.NewReader(strings.NewReader(head)))
		if err == nil || !strings.Contains(err.Error(), `"..."`) {
			t.Fatalf("after %d: fasthttp's error %v does not quote the head cut in two", after, err)
		}
		got := auth.RedactText([]byte(err.Error()))
		for _, s := range segments {
			// Any 8 bytes of a segment: the cut may leave a piece of one.
			for i := 0; i+8 <= len(s); i++ {
				if strings.Contains(got, s[i:i+8]) {
					t.Fatalf("after %d: %q holds %q, from the token", after, got, s[i:i+8])
				}
			}
		}
		if !strings.Contains(got, "Content-Length: x") {
			t.Fatalf("after %d: %q lost what is not a credential", after, got)
		}
	}
}
