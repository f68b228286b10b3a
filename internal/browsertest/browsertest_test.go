package browsertest

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestFind(t *testing.T) {
	t.Parallel()
	installed := func(names ...string) func(string) (string, error) {
		return func(name string) (string, error) {
			for _, n := range names {
				if n == name {
					return "/usr/bin/" + strings.TrimPrefix(name, "/usr/bin/"), nil
				}
			}
			return "", fs.ErrNotExist
		}
	}
	tests := []struct {
		name    string
		env     string
		path    []string
		want    string
		wantErr bool
	}{
		{name: "debian", path: []string{"chromium"}, want: "/usr/bin/chromium"},
		{name: "order", path: []string{"google-chrome", "chromium-browser"}, want: "/usr/bin/chromium-browser"},
		{name: "chrome", path: []string{"google-chrome"}, want: "/usr/bin/google-chrome"},
		{name: "env wins", env: "/usr/bin/mine", path: []string{"/usr/bin/mine", "chromium"}, want: "/usr/bin/mine"},
		{name: "env missing", env: "/nowhere/chrome", path: []string{"chromium"}, wantErr: true},
		{name: "none", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			getenv := func(k string) string {
				if k == "CHROMIUM_PATH" {
					return tc.env
				}
				return ""
			}
			got, err := find(getenv, installed(tc.path...))
			if tc.wantErr {
				if !errors.Is(err, ErrNotFound) {
					t.Fatalf("find: got %q, %v; want ErrNotFound", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("find: got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// recorder stands in for a test to see whether missing skips or fails it.
type recorder struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (r *recorder) Helper() {}
func (r *recorder) Skipf(format string, args ...any) {
	r.skipped, r.msg = true, fmt.Sprintf(format, args...)
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed, r.msg = true, fmt.Sprintf(format, args...)
}

func TestMissingBrowserSkipsOrFailsOnCI(t *testing.T) {
	t.Parallel()
	tests := []struct {
		ci                  string
		wantSkip, wantFatal bool
	}{
		{ci: "", wantSkip: true},
		{ci: "true", wantFatal: true},
		{ci: "1", wantFatal: true},
	}
	for _, tc := range tests {
		t.Run("CI="+tc.ci, func(t *testing.T) {
			t.Parallel()
			r := &recorder{}
			missing(r, tc.ci, ErrNotFound)
			if r.skipped != tc.wantSkip || r.failed != tc.wantFatal {
				t.Fatalf("skipped %v, failed %v; want %v, %v", r.skipped, r.failed, tc.wantSkip, tc.wantFatal)
			}
			if !strings.Contains(r.msg, ErrNotFound.Error()) {
				t.Errorf("message %q does not say what is missing", r.msg)
			}
		})
	}
}

// TestNewRunsABrowser starts the real browser, runs a script in a page and
// reads its console; TestMain's goleak check then proves that cleanup
// stopped everything.
func TestNewRunsABrowser(t *testing.T) {
	ctx := New(t)
	console := RecordConsole(t, ctx)
	page := `data:text/html,<title>t</title><script>console.error("boom")</script>`
	if err := chromedp.Do(ctx, chromedp.Navigate(page)); err != nil {
		t.Fatal(err)
	}
	got, err := chromedp.Run(ctx, chromedp.Evaluate[int](`6 * 7`))
	if err != nil || got != 42 {
		t.Fatalf("Evaluate: got %d, %v; want 42", got, err)
	}
	title, err := chromedp.Run(ctx, chromedp.Title())
	if err != nil || title != "t" {
		t.Fatalf("Title: got %q, %v; want t", title, err)
	}
	// The console is read asynchronously: poll for the message.
	deadline := time.Now().Add(15 * time.Second)
	for len(console.Errors()) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if errs := console.Errors(); len(errs) != 1 || errs[0] != "error: boom" {
		t.Errorf("console errors: got %q, want [error: boom]", errs)
	}
}
