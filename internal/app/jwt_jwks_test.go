package app_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// jwks serves a JWK Set (RFC 7517) that the test changes, on loopback, and
// counts the fetches.
type jwks struct {
	*httptest.Server
	keys    []string
	fetches int
	mu      sync.Mutex
}

func newJWKS(t *testing.T, keys ...string) *jwks {
	t.Helper()
	s := &jwks{keys: keys}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.mu.Lock()
		body := `{"keys":[` + strings.Join(s.keys, ",") + `]}`
		s.fetches++
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(s.Close)
	return s
}

// set replaces the keys served.
func (s *jwks) set(keys ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = keys
}

func (s *jwks) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fetches
}

// jwkOf writes a public key as a JWK with the key id kid (RFC 7518,
// section 6; RFC 8037 for Ed25519), by hand rather than with the library
// under test.
func jwkOf(t *testing.T, kid string, pub any) string {
	t.Helper()
	b64 := base64.RawURLEncoding.EncodeToString
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf(`{"kid":%q,"kty":"RSA","use":"sig","n":%q,"e":%q}`, kid, b64(k.N.Bytes()), b64(big.NewInt(int64(k.E)).Bytes()))
	case *ecdsa.PublicKey:
		point, err := k.Bytes() // 0x04 || X || Y, each the curve's size
		if err != nil {
			t.Fatal(err)
		}
		n := (len(point) - 1) / 2
		return fmt.Sprintf(`{"kid":%q,"kty":"EC","crv":%q,"x":%q,"y":%q}`, kid, k.Params().Name, b64(point[1:1+n]), b64(point[1+n:]))
	case ed25519.PublicKey:
		return fmt.Sprintf(`{"kid":%q,"kty":"OKP","crv":"Ed25519","x":%q}`, kid, b64(k))
	}
	t.Fatalf("no JWK for %T", pub)
	return ""
}

// TestJWTJWKSRotation: with -jwt-jwks-url, tokens signed with a key of the
// set are accepted; the set is rotated while the service runs (a key
// removed, two added): a token with a new key id is accepted at once, the
// service fetching the set again for the unknown key id, and a token of
// the removed key (accepted, and cached, before) is refused from then on.
//
// A key removed without such a fetch stops being accepted at the next
// periodic refresh; the service has no flag for its interval (5 minutes,
// jwtauth.Config.JWKSRefresh), so that is checked in internal/jwtauth
// (TestJWKSPeriodicRefresh), not here.
func TestJWTJWKSRotation(t *testing.T) {
	t.Parallel()
	set := newJWKS(t, jwkOf(t, "key-a", jwtRSA().Public()))
	a := startAuthApp(t, "-jwt-jwks-url", set.URL)
	if n := set.count(); n != 1 {
		t.Fatalf("the set was fetched %d times at start-up, want once", n)
	}
	c := grantClaims("jwks-test", time.Hour, []string{"k.*"}, []string{"k.*"})
	tokA := mint(t, jwt.SigningMethodRS256, jwtRSA(), c, "kid", "key-a")
	tokB := mint(t, jwt.SigningMethodES256, jwtP256(), c, "kid", "key-b")
	tokC := mint(t, jwt.SigningMethodEdDSA, jwtEd(), c, "kid", "key-c")
	l := a.listen(t, "", cookie(tokA))
	a.mustPublish(t, "k.a", `{"n":1}`, bearer(tokA))
	a.mustPublish(t, "k.a", `{"n":2}`, bearer(tokA)) // the cached grant
	l.expect(t, "listener", `k.a {"n":1}`, `k.a {"n":2}`)

	// Rotation: key-a goes, key-b and key-c come.
	set.set(jwkOf(t, "key-b", jwtP256().Public()), jwkOf(t, "key-c", jwtEd().Public()))
	a.mustPublish(t, "k.b", `{"n":3}`, bearer(tokB))
	if n := set.count(); n != 2 {
		t.Errorf("the set was fetched %d times, want once more for the unknown key id", n)
	}
	a.mustPublish(t, "k.c", `{"n":4}`, bearer(tokC))
	const desc = "jwtauth: unknown signing key"
	checkRefused(t, "POST with the removed key's token", a.publish(t, "k.a", `{"n":5}`, bearer(tokA)),
		http.StatusUnauthorized, "invalid token: "+desc, invalidToken(desc))
	checkRefused(t, "GET with the removed key's token", a.do(t, http.MethodGet, "/events", "", cookie(tokA)),
		http.StatusUnauthorized, "invalid token: "+desc, invalidToken(desc))
	a.listen(t, "topic=k.b", bearer(tokB)).close()
	// The listener admitted with key-a keeps its stream until its token
	// expires: a stream is authorised once, when it starts.
	l.expect(t, "listener", `k.b {"n":3}`, `k.c {"n":4}`)
	if n := set.count(); n != 2 {
		t.Errorf("the set was fetched %d times, want 2: known key ids cost no fetch, and unknown ones are rate-limited", n)
	}
}
