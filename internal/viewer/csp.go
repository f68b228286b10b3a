package viewer

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// Content-Security-Policy (W3C CSP Level 3) for a page whose script and
// style are inline.
//
// An inline <script> or <style> runs only if the policy lists the SHA-256 of
// its exact text: the bytes between the opening tag's ">" and the closing
// "</", whitespace included. The hashes are computed here, from the embedded
// page, so editing the page cannot leave the policy behind. Event-handler
// attributes (onclick=...) and style attributes stay forbidden: the page
// attaches its handlers from its script and sets styles through the CSSOM,
// which a policy does not restrict.

// Sentinel errors of the policy builder.
var (
	// errNoScript is returned by policyFor when the page has no inline
	// script: the viewer would be a dead page.
	errNoScript = errors.New("viewer: page has no inline <script>")
	// errUnclosed is returned by policyFor for a <script> or <style> with no
	// closing tag.
	errUnclosed = errors.New("viewer: unclosed inline element")
)

// mustPolicy returns policyFor(page) and panics on error: the page is
// embedded, so an error is a build-time mistake that every test catches.
func mustPolicy(page []byte) string {
	p, err := policyFor(page)
	if err != nil {
		panic(err)
	}
	return p
}

// policyFor returns the Content-Security-Policy for page, with the hash of
// each of its inline scripts and styles. Only bare tags (<script>, <style>,
// no attribute) are recognised; the page uses no other form.
func policyFor(page []byte) (string, error) {
	scripts, err := inlineHashes(page, "script")
	if err != nil {
		return "", err
	}
	if len(scripts) == 0 {
		return "", errNoScript
	}
	styles, err := inlineHashes(page, "style")
	if err != nil {
		return "", err
	}
	styleSrc := "'none'"
	if len(styles) > 0 {
		styleSrc = strings.Join(styles, " ")
	}
	return strings.Join([]string{
		"default-src 'none'",
		"script-src " + strings.Join(scripts, " "),
		"style-src " + styleSrc,
		"connect-src 'self'",
		"img-src data:", // the empty favicon, so the browser does not ask for one
		"base-uri 'none'",
		"form-action 'none'",
		"frame-ancestors 'none'",
	}, "; "), nil
}

// inlineHashes returns a CSP source expression ('sha256-<base64>') for the
// content of every <tag>...</tag> in page, in order.
func inlineHashes(page []byte, tag string) ([]string, error) {
	open := []byte("<" + tag + ">")
	end := []byte("</" + tag + ">")
	var out []string
	for rest := page; ; {
		_, after, found := bytes.Cut(rest, open)
		if !found {
			return out, nil
		}
		body, tail, found := bytes.Cut(after, end)
		if !found {
			return nil, fmt.Errorf("%w: <%s>", errUnclosed, tag)
		}
		sum := sha256.Sum256(body)
		out = append(out, "'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'")
		rest = tail
	}
}
