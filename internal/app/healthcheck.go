package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"
)

// healthcheckTimeout bounds the whole health check: connecting, sending the
// request and reading the answer's head and a little of its body.
const healthcheckTimeout = 3 * time.Second

// parseHealthcheckURL checks a -healthcheck URL: absolute, http or https,
// with a host.
func parseHealthcheckURL(v string) (*url.URL, error) {
	u, err := url.Parse(v)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%q: want an http:// or https:// URL, e.g. http://127.0.0.1:8080/health/ready", v)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%q: no host", v)
	}
	return u, nil
}

// healthcheck performs one GET of target and returns nil on a 2xx answer,
// and an error of one line otherwise: the status and the start of the body
// (the service's probes say why they fail), or why no answer came. It
// follows no redirect and uses no proxy: it checks the address it is given,
// as an orchestrator's probe does. It is what -healthcheck runs, for images
// without a shell or curl.
func healthcheck(ctx context.Context, target string) error {
	ctx, cancel := context.WithTimeout(ctx, healthcheckTimeout)
	defer cancel()
	tr := &http.Transport{Proxy: nil, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, http.NoBody)
	if err != nil {
		return fmt.Errorf("healthcheck %s: %w", target, err)
	}
	req.Header.Set("User-Agent", "event_dispatcher-healthcheck/"+Version)
	resp, err := client.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // the URL is already in the message
		}
		return fmt.Errorf("healthcheck %s: %w", target, err)
	}
	defer resp.Body.Close()
	// A little of the body: /health/ready says why it is not ready.
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	msg := fmt.Sprintf("healthcheck %s: %s", target, resp.Status)
	if text := oneLine(string(body)); text != "" {
		msg += ": " + text
	}
	return errors.New(msg)
}

// oneLine collapses runs of white space and control characters (line
// breaks included) into single spaces, so that what a server sent cannot
// break the one-line report.
func oneLine(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || !unicode.IsPrint(r)
	}), " ")
}
