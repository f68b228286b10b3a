// Package browsertest runs a headless Chromium for tests, driven through the
// Chrome DevTools Protocol with github.com/chromedp/chromedp.
//
// A test calls [New] and gets a chromedp context for a fresh tab of a fresh
// browser; the browser is stopped, and waited for, when the test ends. Where
// no Chromium is installed the test is skipped, unless the CI environment
// variable is set: on CI a missing browser is a broken set-up, and fails.
package browsertest

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// candidates are the executable names looked up on PATH, in order, when
// CHROMIUM_PATH is not set. Debian's chromium package installs
// /usr/bin/chromium.
var candidates = []string{"chromium", "chromium-browser", "google-chrome"}

// ErrNotFound is returned by [Find] when neither CHROMIUM_PATH nor any of
// chromium, chromium-browser and google-chrome names an executable.
var ErrNotFound = errors.New("browsertest: no Chromium found (set CHROMIUM_PATH, or install chromium)")

// flags are the command-line switches the browser runs with, on top of
// chromedp's defaults. Without the networking switches, Chromium keeps
// trying to reach Google's services (component updates, field trials, sync,
// QUIC probes), which a machine without network refuses, slowly.
var flags = map[string]any{
	"headless":                      true,
	"no-sandbox":                    true, // tests run as root in containers
	"disable-gpu":                   true,
	"disable-quic":                  true,
	"no-first-run":                  true,
	"disable-background-networking": true,
	"disable-component-update":      true,
	"disable-sync":                  true,
}

// stopTimeout bounds the graceful close of the browser at cleanup; after it
// the process is killed.
const stopTimeout = 15 * time.Second

// Find returns the Chromium executable to use: $CHROMIUM_PATH when set (it
// must exist), else the first of chromium, chromium-browser and
// google-chrome found on PATH. It returns an
// error wrapping [ErrNotFound] otherwise.
func Find() (string, error) {
	return find(os.Getenv, exec.LookPath)
}

func find(getenv func(string) string, lookPath func(string) (string, error)) (string, error) {
	if p := getenv("CHROMIUM_PATH"); p != "" {
		found, err := lookPath(p)
		if err != nil {
			return "", errors.Join(ErrNotFound, err)
		}
		return found, nil
	}
	for _, name := range candidates {
		if found, err := lookPath(name); err == nil {
			return found, nil
		}
	}
	return "", ErrNotFound
}

// New starts a headless Chromium (--headless --no-sandbox --disable-gpu
// --disable-quic --no-first-run --disable-background-networking
// --disable-component-update --disable-sync, on top of chromedp's defaults; a
// 1280x900 window) with a fresh temporary profile (--user-data-dir under
// tb.TempDir) and returns the chromedp context of its
// first tab, with the browser already running. At cleanup the browser is
// closed (killed after 15 s), New waits for its process and for every
// goroutine chromedp started for it, and the profile is removed.
//
// Without Chromium, New skips the test, or fails it when the CI environment
// variable is non-empty. It fails the test when the browser does not start.
// Call it from the test's goroutine.
func New(tb testing.TB) context.Context {
	tb.Helper()
	path, err := Find()
	if err != nil {
		missing(tb, os.Getenv("CI"), err)
		return nil // not reached: missing ends the test
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(tb.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	for name, value := range flags {
		opts = append(opts, chromedp.Flag(name, value))
	}
	// The browser lives as long as these contexts: not derived from a test
	// context, which ends before the cleanups run.
	allocCtx, allocCancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	tb.Cleanup(func() {
		stopCtx, stop := context.WithTimeout(ctx, stopTimeout)
		defer stop()
		if err := chromedp.Cancel(stopCtx); err != nil && !errors.Is(err, context.Canceled) {
			tb.Logf("browsertest: closing the browser: %v", err)
		}
		cancel()
		allocCancel() // waits for the process and chromedp's goroutines
	})
	// The first action starts the browser; do it now, so that a browser that
	// cannot start fails here, with its error.
	if err := chromedp.Do(ctx); err != nil {
		tb.Fatalf("browsertest: starting %s: %v", path, err)
	}
	return ctx
}

// missing ends a test that has no browser: skipped on a developer's
// machine, failed on CI (ci is the CI environment variable).
func missing(tb testing.TB, ci string, err error) {
	tb.Helper()
	if ci != "" {
		tb.Fatalf("%v; CI=%q, so this is a failure (on Debian: apt-get install chromium)", err, ci)
		return
	}
	tb.Skipf("%v; skipped (set CI to make this a failure)", err)
}
