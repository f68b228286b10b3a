package jwtauth_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/goleak"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/jwtauth"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// t0 is the tests' "now": every verifier runs on a fakeClock from it.
var t0 = time.Date(2030, time.January, 1, 12, 0, 0, 0, time.UTC)

// fakeClock is an injected clock that moves only when told to.
type fakeClock struct {
	now time.Time
	mu  sync.Mutex
}

func newClock() *fakeClock { return &fakeClock{now: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// secret is a valid HMAC secret: 32 bytes.
var secret = []byte("0123456789abcdef0123456789abcdef")

// Keys are generated once per test binary: RSA generation is slow.
var (
	rsaKey   = sync.OnceValue(func() *rsa.PrivateKey { return mustRSA(2048) })
	rsaKey2  = sync.OnceValue(func() *rsa.PrivateKey { return mustRSA(2048) })
	p256Key  = sync.OnceValue(func() *ecdsa.PrivateKey { return mustEC(elliptic.P256()) })
	p384Key  = sync.OnceValue(func() *ecdsa.PrivateKey { return mustEC(elliptic.P384()) })
	p521Key  = sync.OnceValue(func() *ecdsa.PrivateKey { return mustEC(elliptic.P521()) })
	edKey    = sync.OnceValue(mustEd)
	weakRSA  = sync.OnceValue(func() *rsa.PrivateKey { return mustRSA(1024) })
	p256Key2 = sync.OnceValue(func() *ecdsa.PrivateKey { return mustEC(elliptic.P256()) })
)

func mustRSA(bits int) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		panic(err)
	}
	return k
}

func mustEC(c elliptic.Curve) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

func mustEd() ed25519.PrivateKey {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

// pemFile writes the public key of priv as a PEM "PUBLIC KEY" block to a
// file of a temporary directory, and returns the file's content as read
// back, as the server will read -jwt-public-key.
func pemFile(tb testing.TB, pub any) []byte {
	tb.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		tb.Fatal(err)
	}
	return writePEM(tb, "PUBLIC KEY", der)
}

func writePEM(tb testing.TB, blockType string, der []byte) []byte {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "key.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der}), 0o600); err != nil {
		tb.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

// claims returns the usual claims of a test token at t0: valid for an
// hour, publishing on player.> and subscribing to player.*.
func claims() jwt.MapClaims {
	return jwt.MapClaims{
		"sub": "user-1",
		"iat": t0.Unix(),
		"exp": t0.Add(time.Hour).Unix(),
		"pillarbox": map[string]any{
			"publish":   []string{"player.>"},
			"subscribe": []string{"player.*"},
		},
	}
}

// sign returns a token for c signed with key by method, with the header
// entries of hdr (a key id, for instance) added.
func sign(tb testing.TB, method jwt.SigningMethod, key any, c jwt.Claims, hdr ...string) string {
	tb.Helper()
	tok := jwt.NewWithClaims(method, c)
	for i := 0; i+1 < len(hdr); i += 2 {
		tok.Header[hdr[i]] = hdr[i+1]
	}
	s, err := tok.SignedString(key)
	if err != nil {
		tb.Fatalf("signing with %s: %v", method.Alg(), err)
	}
	return s
}

// raw assembles a token from a header, claims and signature as given.
func raw(header, payload string, sig []byte) string {
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload)) + "." + enc.EncodeToString(sig)
}

// newVerifier builds a verifier on clock (a new one at t0 when nil) and
// closes it at the end of the test.
func newVerifier(tb testing.TB, cfg jwtauth.Config, clock *fakeClock) *jwtauth.Verifier {
	tb.Helper()
	if clock == nil {
		clock = newClock()
	}
	cfg.Now = clock.Now
	v, err := jwtauth.New(cfg, nil)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	tb.Cleanup(v.Close)
	return v
}

// refuse verifies token, expects an error that is want, and checks that
// neither the error nor the WWW-Authenticate value derived from it holds
// the token or any part of it.
func refuse(tb testing.TB, v *jwtauth.Verifier, token string, want error) {
	tb.Helper()
	g, err := v.Verify(token)
	if !errors.Is(err, want) || g != nil {
		tb.Fatalf("Verify = %v, %v; want %v", g, err, want)
	}
	checkSafe(tb, err, token)
}

// checkSafe fails when err's text, or its WWW-Authenticate value, holds
// token, one of its segments or one of values (from its claims), of 6
// bytes or more.
func checkSafe(tb testing.TB, err error, token string, values ...string) {
	tb.Helper()
	msgs := []string{err.Error(), jwtauth.WWWAuthenticate(err)}
	parts := []string{token}
	for _, p := range append(strings.Split(token, "."), values...) {
		if len(p) >= 6 { // shorter ones may be words of the message
			parts = append(parts, p)
		}
	}
	for _, m := range msgs {
		for _, p := range parts {
			if p != "" && strings.Contains(m, p) {
				tb.Fatalf("error text %q holds %q, from the token", m, p)
			}
		}
	}
}

// accept verifies token and fails unless it is accepted.
func accept(tb testing.TB, v *jwtauth.Verifier, token string) *jwtauth.Grant {
	tb.Helper()
	g, err := v.Verify(token)
	if err != nil {
		tb.Fatalf("Verify: %v", err)
	}
	return g
}
