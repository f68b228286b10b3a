package jwtauth_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/testutil"

	"github.com/golang-jwt/jwt/v5"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/jwtauth"
)

var b64 = base64.RawURLEncoding

// JWKs written by hand from RFC 7517/7518, independently of the library
// under test. extra is appended inside the object (`"use":"enc"`).

func rsaJWK(kid string, k *rsa.PublicKey, extra ...string) string {
	return jwk(kid, fmt.Sprintf(`"kty":"RSA","n":%q,"e":%q`,
		b64.EncodeToString(k.N.Bytes()), b64.EncodeToString(big.NewInt(int64(k.E)).Bytes())), extra)
}

func ecJWK(kid string, k *ecdsa.PublicKey, extra ...string) string {
	point, err := k.Bytes()
	if err != nil {
		panic(err)
	}
	n := (len(point) - 1) / 2
	return jwk(kid, fmt.Sprintf(`"kty":"EC","crv":%q,"x":%q,"y":%q`,
		k.Params().Name, b64.EncodeToString(point[1:1+n]), b64.EncodeToString(point[1+n:])), extra)
}

func edJWK(kid string, k ed25519.PublicKey, extra ...string) string {
	return jwk(kid, fmt.Sprintf(`"kty":"OKP","crv":"Ed25519","x":%q`, b64.EncodeToString(k)), extra)
}

func octJWK(kid string, k []byte, extra ...string) string {
	return jwk(kid, fmt.Sprintf(`"kty":"oct","k":%q`, b64.EncodeToString(k)), extra)
}

func jwk(kid, fields string, extra []string) string {
	s := `{"kid":` + fmt.Sprintf("%q", kid) + "," + fields
	for _, e := range extra {
		s += "," + e
	}
	return s + "}"
}

// jwksServer serves a JWK Set that the test changes, and counts the
// requests: served[i] tells whether answer i (from 0) was the set's
// version after the last call to set.
type jwksServer struct {
	*httptest.Server
	body    string
	served  []int // the version of the set each answer carried
	status  int
	version int
	mu      sync.Mutex
}

func newJWKSServer(tb testing.TB, keys ...string) *jwksServer {
	tb.Helper()
	s := &jwksServer{status: http.StatusOK}
	s.set(keys...)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.mu.Lock()
		status, body := s.status, s.body
		s.served = append(s.served, s.version)
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	tb.Cleanup(s.Close)
	return s
}

// set replaces the keys served, and returns the new version.
func (s *jwksServer) set(keys ...string) int {
	s.setBody(`{"keys":[` + strings.Join(keys, ",") + `]}`)
	return s.version
}

func (s *jwksServer) setBody(body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.body = body
	s.version++
}

func (s *jwksServer) setStatus(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status = status
}

func (s *jwksServer) hits() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.served)
}

// firstServed returns the number (from 1) of the first answer that carried
// version, or 0.
func (s *jwksServer) firstServed(version int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, v := range s.served {
		if v == version {
			return i + 1
		}
	}
	return 0
}

// syncBuffer is a log destination safe for concurrent writes and reads.
type syncBuffer = testutil.SyncBuffer

func newJWKSVerifier(tb testing.TB, cfg jwtauth.Config, logs *syncBuffer) *jwtauth.Verifier {
	tb.Helper()
	cfg.Now = newClock().Now
	var log *slog.Logger
	if logs != nil {
		log = slog.New(slog.NewTextHandler(logs, nil))
	}
	v, err := jwtauth.New(cfg, log)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	tb.Cleanup(v.Close)
	return v
}

func rs256(tb testing.TB, kid string, k *rsa.PrivateKey) string {
	tb.Helper()
	return sign(tb, jwt.SigningMethodRS256, k, claims(), "kid", kid)
}

func es256(tb testing.TB, kid string, k *ecdsa.PrivateKey) string {
	tb.Helper()
	if kid == "" {
		return sign(tb, jwt.SigningMethodES256, k, claims())
	}
	return sign(tb, jwt.SigningMethodES256, k, claims(), "kid", kid)
}

// Keys rotate without a restart: a token signed with a new kid is accepted
// once the unknown kid has made the verifier fetch the set again, cached
// tokens stay cached while their key stays, and a key removed from the set
// stops being accepted, cached or not.
func TestJWKSRotation(t *testing.T) {
	t.Parallel()
	srv := newJWKSServer(t, rsaJWK("k1", &rsaKey().PublicKey))
	// No limit on refreshes for unknown kids: each one fetches.
	v := newJWKSVerifier(t, jwtauth.Config{JWKSURL: srv.URL, JWKSRefreshLimit: time.Nanosecond}, nil)
	if srv.hits() != 1 || v.JWKSRefreshes() != 1 {
		t.Fatalf("New fetched the set %d times (%d refreshes), want once", srv.hits(), v.JWKSRefreshes())
	}
	t1 := rs256(t, "k1", rsaKey())
	g1 := accept(t, v, t1)

	// k2 is added: its first token makes the verifier fetch the set.
	srv.set(rsaJWK("k1", &rsaKey().PublicKey), ecJWK("k2", &p256Key().PublicKey))
	t2 := es256(t, "k2", p256Key())
	accept(t, v, t2)
	if srv.hits() != 2 || v.KeyGeneration() != 0 {
		t.Fatalf("after k2's first token: %d fetches, key generation %d; want 2, 0", srv.hits(), v.KeyGeneration())
	}
	accept(t, v, t2) // cached now: no fetch
	if accept(t, v, t1) != g1 {
		t.Error("adding a key dropped the cached tokens of the others")
	}
	if srv.hits() != 2 {
		t.Fatalf("%d fetches for known keys", srv.hits())
	}

	// k1 is removed; the next fetch (here caused by another unknown kid)
	// drops it, and its cached tokens with it.
	srv.set(ecJWK("k2", &p256Key().PublicKey))
	refuse(t, v, es256(t, "k3", p256Key2()), jwtauth.ErrUnknownKey)
	if srv.hits() != 3 || v.KeyGeneration() != 1 {
		t.Fatalf("after k1's removal: %d fetches, key generation %d; want 3, 1", srv.hits(), v.KeyGeneration())
	}
	refuse(t, v, t1, jwtauth.ErrUnknownKey)
	accept(t, v, t2)

	// A key replaced under the same kid counts as removed.
	srv.set(ecJWK("k2", &p256Key2().PublicKey))
	refuse(t, v, es256(t, "k4", p256Key2()), jwtauth.ErrUnknownKey)
	if v.KeyGeneration() != 2 {
		t.Fatalf("key generation %d after k2 changed, want 2", v.KeyGeneration())
	}
	refuse(t, v, t2, jwtauth.ErrInvalidSignature)
	accept(t, v, es256(t, "k2", p256Key2()))
}

// Fetches caused by unknown kids are rate-limited: one per
// JWKSRefreshLimit, the others refused at once without a fetch.
func TestJWKSUnknownKidRateLimited(t *testing.T) {
	t.Parallel()
	srv := newJWKSServer(t, rsaJWK("k1", &rsaKey().PublicKey))
	v := newJWKSVerifier(t, jwtauth.Config{JWKSURL: srv.URL, JWKSRefreshLimit: time.Hour}, nil)
	srv.set(rsaJWK("k1", &rsaKey().PublicKey), ecJWK("k2", &p256Key().PublicKey))
	accept(t, v, es256(t, "k2", p256Key()))
	srv.set(rsaJWK("k1", &rsaKey().PublicKey), ecJWK("k2", &p256Key().PublicKey), ecJWK("k3", &p256Key2().PublicKey))
	for range 5 {
		refuse(t, v, es256(t, "k3", p256Key2()), jwtauth.ErrUnknownKey)
		refuse(t, v, es256(t, "nope", p256Key2()), jwtauth.ErrUnknownKey)
	}
	if srv.hits() != 2 {
		t.Errorf("%d fetches, want 2: the first one and one for an unknown kid", srv.hits())
	}
	accept(t, v, rs256(t, "k1", rsaKey()))
}

// The periodic refresh picks up a removed key without any token asking.
func TestJWKSPeriodicRefresh(t *testing.T) {
	t.Parallel()
	srv := newJWKSServer(t, rsaJWK("k1", &rsaKey().PublicKey))
	v := newJWKSVerifier(t, jwtauth.Config{JWKSURL: srv.URL, JWKSRefresh: jwtauth.MinJWKSRefresh, JWKSRefreshLimit: time.Hour}, nil)
	t1 := rs256(t, "k1", rsaKey())
	accept(t, v, t1)

	version := srv.set(edJWK("k2", edKey().Public().(ed25519.PublicKey)))
	// Wait for the set to be fetched, then for that answer to be stored:
	// the fetches are numbered, and the verifier counts the ones it
	// stored, in order.
	for {
		if n := srv.firstServed(version); n > 0 && v.JWKSRefreshes() >= uint64(n) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if v.KeyGeneration() != 1 {
		t.Errorf("key generation %d, want 1", v.KeyGeneration())
	}
	refuse(t, v, t1, jwtauth.ErrUnknownKey) // cached, but its key is gone
	accept(t, v, sign(t, jwt.SigningMethodEdDSA, edKey(), claims(), "kid", "k2"))
}

// Each kind of key in a set, tokens without a kid, and the keys and
// algorithms a set must not make acceptable.
func TestJWKSKeys(t *testing.T) {
	t.Parallel()
	edPub := edKey().Public().(ed25519.PublicKey)
	hmacKey := []byte("a symmetric key in a JWKS, 32 bytes+")
	srv := newJWKSServer(t,
		rsaJWK("rsa", &rsaKey().PublicKey),
		rsaJWK("rsa-alg", &rsaKey2().PublicKey, `"alg":"RS256"`, `"use":"sig"`),
		ecJWK("p256", &p256Key().PublicKey),
		ecJWK("p384", &p384Key().PublicKey),
		edJWK("ed", edPub),
		octJWK("oct", hmacKey),
		rsaJWK("weak", &weakRSA().PublicKey),
		ecJWK("enc", &p256Key2().PublicKey, `"use":"enc"`),
	)
	v := newJWKSVerifier(t, jwtauth.Config{JWKSURL: srv.URL, JWKSRefreshLimit: time.Hour}, nil)
	c := claims()
	for _, tok := range []string{
		sign(t, jwt.SigningMethodRS256, rsaKey(), c, "kid", "rsa"),
		sign(t, jwt.SigningMethodPS512, rsaKey(), c, "kid", "rsa"),
		sign(t, jwt.SigningMethodRS256, rsaKey2(), c, "kid", "rsa-alg"),
		sign(t, jwt.SigningMethodES256, p256Key(), c, "kid", "p256"),
		sign(t, jwt.SigningMethodES384, p384Key(), c, "kid", "p384"),
		sign(t, jwt.SigningMethodEdDSA, edKey(), c, "kid", "ed"),
		// Without a kid, every key of the set that fits the algorithm.
		sign(t, jwt.SigningMethodES384, p384Key(), c),
		sign(t, jwt.SigningMethodEdDSA, edKey(), c),
		sign(t, jwt.SigningMethodPS256, rsaKey(), c),
		sign(t, jwt.SigningMethodRS256, rsaKey2(), c),
	} {
		accept(t, v, tok)
	}

	rsaPEM := pemFile(t, rsaKey().Public())
	rsaDER, _ := x509.MarshalPKIXPublicKey(rsaKey().Public())
	for name, tc := range map[string]struct {
		want error
		tok  string
	}{
		"HS256 with the RSA key's PEM":   {jwtauth.ErrAlgorithm, sign(t, jwt.SigningMethodHS256, rsaPEM, c, "kid", "rsa")},
		"HS256 with the RSA key's DER":   {jwtauth.ErrAlgorithm, sign(t, jwt.SigningMethodHS256, rsaDER, c, "kid", "rsa")},
		"HS256 with the modulus":         {jwtauth.ErrAlgorithm, sign(t, jwt.SigningMethodHS256, rsaKey().N.Bytes(), c, "kid", "rsa")},
		"HS256 with the set's oct key":   {jwtauth.ErrAlgorithm, sign(t, jwt.SigningMethodHS256, hmacKey, c, "kid", "oct")},
		"HS256 without a kid":            {jwtauth.ErrAlgorithm, sign(t, jwt.SigningMethodHS256, hmacKey, c)},
		"ES256 on the RSA key":           {jwtauth.ErrAlgorithm, sign(t, jwt.SigningMethodES256, p256Key(), c, "kid", "rsa")},
		"ES256 on the P-384 key":         {jwtauth.ErrAlgorithm, sign(t, jwt.SigningMethodES256, p256Key(), c, "kid", "p384")},
		"RS256 on the oct key":           {jwtauth.ErrUnknownKey, sign(t, jwt.SigningMethodRS256, rsaKey(), c, "kid", "oct")},
		"PS256 on an RS256-only key":     {jwtauth.ErrUnknownKey, sign(t, jwt.SigningMethodPS256, rsaKey2(), c, "kid", "rsa-alg")},
		"PS256 on it without a kid":      {jwtauth.ErrInvalidSignature, sign(t, jwt.SigningMethodPS256, rsaKey2(), c)},
		"a 1024-bit RSA key":             {jwtauth.ErrUnknownKey, sign(t, jwt.SigningMethodRS256, weakRSA(), c, "kid", "weak")},
		"a 1024-bit RSA key without kid": {jwtauth.ErrInvalidSignature, sign(t, jwt.SigningMethodRS256, weakRSA(), c)},
		"an encryption key":              {jwtauth.ErrUnknownKey, sign(t, jwt.SigningMethodES256, p256Key2(), c, "kid", "enc")},
		"ES512 with no P-521 key":        {jwtauth.ErrUnknownKey, sign(t, jwt.SigningMethodES512, p521Key(), c)},
		"kid not a string":               {jwtauth.ErrUnknownKey, raw(`{"alg":"ES256","kid":7}`, `{}`, make([]byte, 64))},
		"alg none":                       {jwtauth.ErrAlgorithm, raw(`{"alg":"none","kid":"rsa"}`, `{}`, nil)},
	} {
		t.Run(name, func(t *testing.T) { refuse(t, v, tc.tok, tc.want) })
	}
}

// A key server that fails at start leaves a verifier that refuses tokens,
// logs why, and recovers at the next fetch.
func TestJWKSFirstFetchFails(t *testing.T) {
	t.Parallel()
	srv := newJWKSServer(t, rsaJWK("k1", &rsaKey().PublicKey))
	srv.setStatus(http.StatusServiceUnavailable)
	var logs syncBuffer
	v := newJWKSVerifier(t, jwtauth.Config{JWKSURL: srv.URL, JWKSRefreshLimit: time.Nanosecond}, &logs)
	tok := rs256(t, "k1", rsaKey())
	refuse(t, v, tok, jwtauth.ErrUnknownKey)
	if !strings.Contains(logs.String(), "JWKS") || strings.Contains(logs.String(), tok) {
		t.Errorf("logs: %s", logs.String())
	}
	srv.setStatus(http.StatusOK)
	accept(t, v, tok)
}

// A set larger than MaxJWKSBytes is not read whole; the keys known stay.
func TestJWKSTooLarge(t *testing.T) {
	t.Parallel()
	srv := newJWKSServer(t, rsaJWK("k1", &rsaKey().PublicKey))
	var logs syncBuffer
	v := newJWKSVerifier(t, jwtauth.Config{JWKSURL: srv.URL, JWKSRefreshLimit: time.Nanosecond}, &logs)
	tok := rs256(t, "k1", rsaKey())
	accept(t, v, tok)
	srv.setBody(`{"keys":[` + ecJWK("k2", &p256Key().PublicKey) + `],"padding":"` + strings.Repeat("x", jwtauth.MaxJWKSBytes) + `"}`)
	refuse(t, v, es256(t, "k2", p256Key()), jwtauth.ErrUnknownKey)
	if !strings.Contains(logs.String(), "larger than") {
		t.Errorf("logs: %s", logs.String())
	}
	other := claims()
	other["sub"] = "user-2" // a token not cached: k1 is still known
	accept(t, v, sign(t, jwt.SigningMethodRS256, rsaKey(), other, "kid", "k1"))
}

// A redirect is not followed: the keys come from the configured address.
func TestJWKSRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	keys := newJWKSServer(t, rsaJWK("k1", &rsaKey().PublicKey))
	redirect := httptest.NewServer(http.RedirectHandler(keys.URL, http.StatusFound))
	t.Cleanup(redirect.Close)
	v := newJWKSVerifier(t, jwtauth.Config{JWKSURL: redirect.URL, JWKSRefreshLimit: time.Hour}, nil)
	refuse(t, v, rs256(t, "k1", rsaKey()), jwtauth.ErrUnknownKey)
	if keys.hits() != 0 {
		t.Errorf("the redirect was followed")
	}
}

// Close stops the refresh goroutine (TestMain's goleak check fails
// otherwise) and may be called twice; the keys stay usable.
func TestJWKSClose(t *testing.T) {
	t.Parallel()
	srv := newJWKSServer(t, rsaJWK("k1", &rsaKey().PublicKey))
	v, err := jwtauth.New(jwtauth.Config{JWKSURL: srv.URL, JWKSRefresh: time.Second, Now: newClock().Now}, nil)
	if err != nil {
		t.Fatal(err)
	}
	v.Close()
	v.Close()
	accept(t, v, rs256(t, "k1", rsaKey()))
}
