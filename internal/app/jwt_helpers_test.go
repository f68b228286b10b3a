package app_test

// Helpers for the tests of signed tokens (JSON Web Tokens) through the
// running service: keys, minting, requests with a token in each place a
// client may put it, streams read as a browser would, and /health.

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	json "github.com/goccy/go-json"
	"github.com/golang-jwt/jwt/v5"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/client"
)

// jwtSecret is the HMAC secret of the services that verify with -jwt-secret:
// 32 bytes, the shortest accepted.
const jwtSecret = "test-secret-0123456789-abcdefghi"

// realm is the start of every WWW-Authenticate value the service sends.
const realm = `Bearer realm="pillarbox-event-dispatcher"`

// Keys are generated once per test binary: RSA generation is slow.
var (
	jwtRSA      = sync.OnceValue(func() *rsa.PrivateKey { return must(rsa.GenerateKey(rand.Reader, 2048)) })
	jwtRSAOther = sync.OnceValue(func() *rsa.PrivateKey { return must(rsa.GenerateKey(rand.Reader, 2048)) })
	jwtP256     = sync.OnceValue(func() *ecdsa.PrivateKey { return must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader)) })
	jwtP384     = sync.OnceValue(func() *ecdsa.PrivateKey { return must(ecdsa.GenerateKey(elliptic.P384(), rand.Reader)) })
	jwtP256b    = sync.OnceValue(func() *ecdsa.PrivateKey { return must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader)) })
	jwtEd       = sync.OnceValue(func() ed25519.PrivateKey { _, k := must2(ed25519.GenerateKey(rand.Reader)); return k })
	jwtEdOther  = sync.OnceValue(func() ed25519.PrivateKey { _, k := must2(ed25519.GenerateKey(rand.Reader)); return k })
)

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func must2[A, B any](a A, b B, err error) (A, B) {
	if err != nil {
		panic(err)
	}
	return a, b
}

// publicPEM writes pub as a PEM "PUBLIC KEY" file in a temporary directory,
// for -jwt-public-key, and returns its path.
func publicPEM(t testing.TB, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "public.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// grantClaims are the claims of a token for sub, valid from a minute ago for
// ttl, that grants publish and subscribe (nil: the list is absent).
func grantClaims(sub string, ttl time.Duration, publish, subscribe []string) jwt.MapClaims {
	now := time.Now()
	c := jwt.MapClaims{"sub": sub, "iat": now.Add(-time.Minute).Unix(), "exp": now.Add(ttl).Unix()}
	pb := map[string]any{}
	if publish != nil {
		pb["publish"] = publish
	}
	if subscribe != nil {
		pb["subscribe"] = subscribe
	}
	c["pillarbox"] = pb
	return c
}

// mint signs claims with key by method, adding the header entries of hdr
// (pairs: "kid", "a").
func mint(t testing.TB, method jwt.SigningMethod, key any, c jwt.Claims, hdr ...string) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, c)
	for i := 0; i+1 < len(hdr); i += 2 {
		tok.Header[hdr[i]] = hdr[i+1]
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("signing with %s: %v", method.Alg(), err)
	}
	return s
}

// hs256 mints an HS256 token with jwtSecret.
func hs256(t testing.TB, c jwt.Claims) string {
	t.Helper()
	return mint(t, jwt.SigningMethodHS256, []byte(jwtSecret), c)
}

// unsigned returns a token with "alg": "none" and an empty signature.
func unsigned(t testing.TB, c jwt.Claims) string {
	t.Helper()
	return mint(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, c)
}

// authApp is the service run in-process by app.Run, on a loopback port.
type authApp struct {
	client *http.Client
	stop   func() error
	logs   *syncBuffer
	addr   string
}

// startAuthApp runs the service with args after the common ones: loopback,
// JSON logs (runApp reads the address from them), no IP enrichment (a
// listener then receives exactly the bytes posted), a short shutdown. Its
// log is shown if t fails.
func startAuthApp(t *testing.T, args ...string) *authApp {
	t.Helper()
	addr, stop, logs := runApp(t, append([]string{
		"-port", "127.0.0.1:0", "-log-format", "json", "-ip-field=", "-shutdown-timeout", "5s",
	}, args...), noEnv)
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	t.Cleanup(tr.CloseIdleConnections)
	a := &authApp{client: &http.Client{Transport: tr}, stop: stop, logs: logs, addr: addr}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log of the service:\n%s", tail(logs.String(), 40))
		}
	})
	return a
}

// credential puts a token in a request.
type credential func(*http.Request)

// bearer sends tok in the Authorization header.
func bearer(tok string) credential {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
}

// cookie sends tok in the dispatcher_token cookie, as a browser would.
func cookie(tok string) credential {
	return func(r *http.Request) {
		r.AddCookie(&http.Cookie{Name: "dispatcher_token", Value: tok}) //nolint:gosec // a request's cookie: its attributes are the server's business
	}
}

// inQuery sends tok in the token query parameter.
func inQuery(tok string) credential {
	return func(r *http.Request) {
		q := r.URL.Query()
		q.Set("token", tok)
		r.URL.RawQuery = q.Encode()
	}
}

// noCredential sends no token.
func noCredential(*http.Request) {}

// reply is a non-stream answer, read whole.
type reply struct {
	header http.Header
	body   string
	status int
}

// do sends a request with cred and reads the answer whole, unless it is an
// event stream: then it closes it and returns the status and headers only.
func (a *authApp) do(t testing.TB, method, path, body string, cred credential) reply {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://"+a.addr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	cred(req)
	resp, err := a.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		return reply{status: resp.StatusCode, header: resp.Header}
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", method, path, err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// publish POSTs body on topic ("": the default topic) with cred.
func (a *authApp) publish(t testing.TB, topic, body string, cred credential) reply {
	t.Helper()
	path := "/api/events"
	if topic != "" {
		path += "?topic=" + url.QueryEscape(topic)
	}
	return a.do(t, http.MethodPost, path, body, cred)
}

// mustPublish publishes and fails t unless the answer is 200.
func (a *authApp) mustPublish(t testing.TB, topic, body string, cred credential) {
	t.Helper()
	if r := a.publish(t, topic, body, cred); r.status != http.StatusOK {
		t.Fatalf("POST on %q: %d %s", topic, r.status, r.body)
	}
}

// checkRefused fails t unless r is status with the JSON error msg and the
// WWW-Authenticate value authenticate.
func checkRefused(t testing.TB, what string, r reply, status int, msg, authenticate string) {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	if r.status != status || json.Unmarshal([]byte(r.body), &e) != nil || e.Error != msg ||
		!strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		t.Errorf("%s: %d %q (%s), want %d {\"error\":%q}", what, r.status, r.body, r.header.Get("Content-Type"), status, msg)
	}
	if got := r.header.Get("WWW-Authenticate"); got != authenticate {
		t.Errorf("%s: WWW-Authenticate %q, want %q", what, got, authenticate)
	}
}

// invalidToken is the WWW-Authenticate value of a token refused for the
// reason desc (the verifier's error, "jwtauth: token expired").
func invalidToken(desc string) string {
	return realm + `, error="invalid_token", error_description="` + desc + `"`
}

// insufficientScope is the WWW-Authenticate value of a valid token that
// does not grant the topic.
const insufficientScope = realm + `, error="insufficient_scope"`

// sse is one GET /events stream, read in a goroutine of its own.
type sse struct {
	cancel   context.CancelFunc
	msgs     chan client.Message
	done     chan struct{} // closed when the stream ended
	header   http.Header
	greeting []string // the lines of the first block, without the blank line
	ended    time.Time
	err      error         // how the stream ended: io.EOF for a clean end
	retry    time.Duration // the last retry hint after the greeting
	retrySet bool
}

// listen opens GET /events?query with cred (and the header pairs hdr), fails
// t unless it is answered 200 with an event stream, reads the greeting
// block, and goes on reading in the background. The stream is closed at t's
// cleanup.
func (a *authApp) listen(t testing.TB, query string, cred credential, hdr ...string) *sse {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	path := "/events"
	if query != "" {
		path += "?" + query
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+a.addr+path, nil)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	cred(req)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := a.client.Do(req) //nolint:bodyclose // closed by the reading goroutine, or on every early return
	if err != nil {
		cancel()
		t.Fatalf("GET %s: %v", path, err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		resp.Body.Close()
		cancel()
		t.Fatalf("GET %s: %d %s %q, want a stream", path, resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	s := &sse{cancel: cancel, msgs: make(chan client.Message, 1024), done: make(chan struct{}), header: resp.Header}
	body := bufio.NewReader(resp.Body)
	for {
		line, err := body.ReadString('\n')
		if err != nil {
			resp.Body.Close()
			cancel()
			t.Fatalf("GET %s: greeting %q: %v", path, s.greeting, err)
		}
		if line == "\n" {
			break
		}
		s.greeting = append(s.greeting, strings.TrimSuffix(line, "\n"))
	}
	go func() {
		defer close(s.done)
		defer resp.Body.Close()
		r := client.NewReader(body)
		for {
			m, err := r.NextMessage()
			if err != nil {
				s.ended, s.err = time.Now(), err
				s.retry, s.retrySet = r.Retry()
				return
			}
			s.msgs <- m
		}
	}()
	t.Cleanup(s.close)
	return s
}

// close ends the stream from the client's side and waits for the reader.
func (s *sse) close() {
	s.cancel()
	for {
		select {
		case <-s.msgs: // unblock the reader
		case <-s.done:
			return
		}
	}
}

// comment returns the greeting's comment that starts with prefix, or "".
func (s *sse) comment(prefix string) string {
	for _, l := range s.greeting {
		if strings.HasPrefix(l, ": "+prefix) {
			return strings.TrimPrefix(l, ": ")
		}
	}
	return ""
}

// next returns the next event, skipping comments (heartbeats), failing t if
// none comes within wait or the stream ends.
func (s *sse) next(t testing.TB) client.Event {
	t.Helper()
	timeout := time.After(wait)
	for {
		select {
		case m := <-s.msgs:
			if !m.IsComment {
				return m.Event
			}
		case <-s.done:
			select {
			case m := <-s.msgs:
				if !m.IsComment {
					return m.Event
				}
				continue
			default:
			}
			t.Fatalf("the stream ended (%v) while an event was awaited", s.err)
		case <-timeout:
			t.Fatalf("no event within %v", wait)
		}
	}
}

// expect reads the next len(want) events and fails t unless each has the
// topic and data of want's entries ("topic data").
func (s *sse) expect(t testing.TB, who string, want ...string) []client.Event {
	t.Helper()
	got := make([]client.Event, 0, len(want))
	for i, w := range want {
		ev := s.next(t)
		got = append(got, ev)
		if have := ev.Topic + " " + string(ev.Data); have != w {
			t.Fatalf("%s: event %d is %q, want %q", who, i, have, w)
		}
	}
	return got
}

// quiet fails t if an event arrives within d.
func (s *sse) quiet(t testing.TB, who string, d time.Duration) {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case m := <-s.msgs:
			if !m.IsComment {
				t.Fatalf("%s: unexpected event on %q: %s", who, m.Event.Topic, m.Event.Data)
			}
		case <-timeout:
			return
		}
	}
}

// waitEnd waits for the service to end the stream and returns when it
// ended, failing t unless it ended cleanly within d.
func (s *sse) waitEnd(t testing.TB, d time.Duration) time.Time {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case m := <-s.msgs:
			if !m.IsComment {
				t.Fatalf("unexpected event on %q before the end: %s", m.Event.Topic, m.Event.Data)
			}
		case <-s.done:
			for len(s.msgs) > 0 {
				if m := <-s.msgs; !m.IsComment {
					t.Fatalf("unexpected event on %q before the end: %s", m.Event.Topic, m.Event.Data)
				}
			}
			if !errors.Is(s.err, io.EOF) {
				t.Fatalf("the stream ended with %v, want a clean end", s.err)
			}
			return s.ended
		case <-timeout:
			t.Fatalf("the stream did not end within %v", d)
		}
	}
}

// healthOf is what the tests read of GET /health.
type healthOf struct {
	Ended      map[string]uint64 `json:"listeners_ended_by_reason"`
	TurnedAway map[string]uint64 `json:"listeners_turned_away_by_reason"`
	Rejected   map[string]uint64 `json:"events_rejected_by_reason"`
	Listeners  int               `json:"listeners"`
}

// health reads GET /health.
func (a *authApp) health(t testing.TB) healthOf {
	t.Helper()
	r := a.do(t, http.MethodGet, "/health", "", noCredential)
	var h healthOf
	if r.status != http.StatusOK || json.Unmarshal([]byte(r.body), &h) != nil {
		t.Fatalf("GET /health: %d %s", r.status, r.body)
	}
	return h
}

// waitHealth polls /health until cond holds.
func (a *authApp) waitHealth(t testing.TB, what string, cond func(healthOf) bool) {
	t.Helper()
	poll(t, func() error {
		if h := a.health(t); !cond(h) {
			return fmt.Errorf("%s: /health says %+v", what, h)
		}
		return nil
	})
}
