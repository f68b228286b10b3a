package viewer_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/viewer"
	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/server"
)

// reply is what a GET got back.
type reply struct {
	header http.Header
	body   string
	status int
}

// get requests url with the given extra headers (name, value pairs).
func get(tb testing.TB, c *http.Client, url string, headers ...string) reply {
	tb.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		tb.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		tb.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: string(body)}
}

func TestServedOnTheRoot(t *testing.T) {
	t.Parallel()
	s := startService(t, "127.0.0.1:0", nil)
	c := client(t)

	r := get(t, c, s.url()+"/")
	if r.status != http.StatusOK {
		t.Fatalf("GET /: %d", r.status)
	}
	for name, want := range map[string]string{
		"Content-Type":            "text/html; charset=utf-8",
		"Cache-Control":           "no-cache",
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
		"ETag":                    viewer.ETag(),
		"Content-Security-Policy": viewer.ContentSecurityPolicy(),
	} {
		if got := r.header.Get(name); got != want {
			t.Errorf("%s: got %q, want %q", name, got, want)
		}
	}
	if !strings.HasPrefix(r.body, "<!doctype html>") || !strings.Contains(r.body, `id="events"`) {
		t.Errorf("body is not the viewer: %.80q", r.body)
	}
	csp := r.header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'sha256-", "connect-src 'self'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("Content-Security-Policy %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
		t.Errorf("Content-Security-Policy %q allows unsafe code", csp)
	}

	for _, tc := range []struct {
		ifNoneMatch string
		want        int
	}{
		{viewer.ETag(), http.StatusNotModified},
		{"W/" + viewer.ETag(), http.StatusNotModified},
		{`"other", ` + viewer.ETag(), http.StatusNotModified},
		{"*", http.StatusNotModified},
		{`"other"`, http.StatusOK},
	} {
		r := get(t, c, s.url()+"/", "If-None-Match", tc.ifNoneMatch)
		if r.status != tc.want {
			t.Errorf("If-None-Match %s: %d, want %d", tc.ifNoneMatch, r.status, tc.want)
		}
		if tc.want == http.StatusNotModified {
			if r.body != "" {
				t.Errorf("304 with a body of %d bytes", len(r.body))
			}
			if got := r.header.Get("ETag"); got != viewer.ETag() {
				t.Errorf("304: ETag %q, want %q", got, viewer.ETag())
			}
		}
	}
}

func TestViewerCanBeTurnedOff(t *testing.T) {
	t.Parallel()
	s := startService(t, "127.0.0.1:0", func(c *server.Config) { c.Viewer = false })
	c := client(t)
	if r := get(t, c, s.url()+"/"); r.status != http.StatusNotFound {
		t.Errorf("GET / with Viewer off: %d, want 404", r.status)
	}
	if r := get(t, c, s.url()+"/health"); r.status != http.StatusOK {
		t.Errorf("GET /health with Viewer off: %d, want 200", r.status)
	}
	if !server.DefaultConfig().Viewer {
		t.Error("DefaultConfig().Viewer is false; the viewer is on by default")
	}
}
