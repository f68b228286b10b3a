package auth_test

import (
	"strings"
	"testing"

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
			var secrets [][]byte
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
