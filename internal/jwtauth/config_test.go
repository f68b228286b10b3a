package jwtauth_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/jwtauth"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	rsaPEM := pemFile(t, rsaKey().Public())
	pkcs8, err := x509.MarshalPKCS8PrivateKey(p256Key())
	if err != nil {
		t.Fatal(err)
	}
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p224DER, err := x509.MarshalPKIXPublicKey(p224.Public())
	if err != nil {
		t.Fatal(err)
	}
	shortSecret := []byte("short-secret-0123456789")

	for _, tc := range []struct {
		name    string
		setting string // "" for a valid Config
		cfg     jwtauth.Config
	}{
		{name: "off", cfg: jwtauth.Config{}},
		{name: "secret", cfg: jwtauth.Config{Secret: secret, Issuer: "i", Audience: "a"}},
		{name: "public key", cfg: jwtauth.Config{PublicKeyPEM: rsaPEM}},
		{name: "https JWKS", cfg: jwtauth.Config{JWKSURL: "https://idp.example/.well-known/jwks.json"}},
		{name: "loopback JWKS", cfg: jwtauth.Config{JWKSURL: "http://127.0.0.1:8081/jwks"}},
		{name: "localhost JWKS", cfg: jwtauth.Config{JWKSURL: "http://localhost/jwks"}},
		{name: "IPv6 loopback JWKS", cfg: jwtauth.Config{JWKSURL: "http://[::1]:9/jwks"}},
		{name: "max leeway", cfg: jwtauth.Config{Secret: secret, Leeway: jwtauth.MaxLeeway}},
		{name: "all the JWKS settings", cfg: jwtauth.Config{JWKSURL: "https://idp.example/jwks", JWKSRefresh: time.Second, JWKSRefreshLimit: time.Minute, JWKSTimeout: time.Second}},

		{name: "issuer without a key", setting: "jwt-issuer", cfg: jwtauth.Config{Issuer: "i"}},
		{name: "audience without a key", setting: "jwt-audience", cfg: jwtauth.Config{Audience: "a"}},
		{name: "secret and public key", setting: "jwt-secret, jwt-public-key", cfg: jwtauth.Config{Secret: secret, PublicKeyPEM: rsaPEM}},
		{name: "public key and JWKS", setting: "jwt-public-key, jwt-jwks-url", cfg: jwtauth.Config{PublicKeyPEM: rsaPEM, JWKSURL: "https://idp.example/jwks"}},
		{name: "all three", setting: "jwt-secret, jwt-public-key, jwt-jwks-url", cfg: jwtauth.Config{Secret: secret, PublicKeyPEM: rsaPEM, JWKSURL: "https://x/"}},
		{name: "short secret", setting: "jwt-secret", cfg: jwtauth.Config{Secret: shortSecret}},
		{name: "not PEM", setting: "jwt-public-key", cfg: jwtauth.Config{PublicKeyPEM: []byte("ssh-ed25519 AAAA")}},
		{name: "private key", setting: "jwt-public-key", cfg: jwtauth.Config{PublicKeyPEM: writePEM(t, "PRIVATE KEY", pkcs8)}},
		{name: "EC private key", setting: "jwt-public-key", cfg: jwtauth.Config{PublicKeyPEM: writePEM(t, "EC PRIVATE KEY", []byte{1})}},
		{name: "two keys", setting: "jwt-public-key", cfg: jwtauth.Config{PublicKeyPEM: append(pemFile(t, edKey().Public()), rsaPEM...)}},
		{name: "corrupt key", setting: "jwt-public-key", cfg: jwtauth.Config{PublicKeyPEM: writePEM(t, "PUBLIC KEY", []byte("garbage"))}},
		{name: "other block", setting: "jwt-public-key", cfg: jwtauth.Config{PublicKeyPEM: writePEM(t, "OPENSSH PUBLIC KEY", []byte("x"))}},
		{name: "weak RSA", setting: "jwt-public-key", cfg: jwtauth.Config{PublicKeyPEM: pemFile(t, weakRSA().Public())}},
		{name: "P-224", setting: "jwt-public-key", cfg: jwtauth.Config{PublicKeyPEM: writePEM(t, "PUBLIC KEY", p224DER)}},
		{name: "http JWKS", setting: "jwt-jwks-url", cfg: jwtauth.Config{JWKSURL: "http://idp.example/jwks"}},
		{name: "ftp JWKS", setting: "jwt-jwks-url", cfg: jwtauth.Config{JWKSURL: "ftp://idp.example/jwks"}},
		{name: "relative JWKS", setting: "jwt-jwks-url", cfg: jwtauth.Config{JWKSURL: "/jwks"}},
		{name: "JWKS not a URL", setting: "jwt-jwks-url", cfg: jwtauth.Config{JWKSURL: "https://idp example/%zz"}},
		{name: "JWKS with credentials", setting: "jwt-jwks-url", cfg: jwtauth.Config{JWKSURL: "https://user:pass@idp.example/jwks"}}, //nolint:gosec // G101: a made-up credential, to check it is refused and not echoed
		{name: "leeway over 5s", setting: "jwt-leeway", cfg: jwtauth.Config{Secret: secret, Leeway: jwtauth.MaxLeeway + time.Nanosecond}},
		{name: "negative leeway", setting: "jwt-leeway", cfg: jwtauth.Config{Secret: secret, Leeway: -time.Second}},
		{name: "refresh too often", setting: "jwt-jwks-refresh", cfg: jwtauth.Config{JWKSURL: "https://x/", JWKSRefresh: time.Millisecond}},
		{name: "negative refresh limit", setting: "jwt-jwks-refresh-limit", cfg: jwtauth.Config{JWKSURL: "https://x/", JWKSRefreshLimit: -1}},
		{name: "negative timeout", setting: "jwt-jwks-timeout", cfg: jwtauth.Config{JWKSURL: "https://x/", JWKSTimeout: -1}},
		{name: "negative cache TTL", setting: "jwt-cache-ttl", cfg: jwtauth.Config{Secret: secret, CacheTTL: -1}},
		{name: "line break in issuer", setting: "jwt-issuer", cfg: jwtauth.Config{Secret: secret, Issuer: "a\nb"}},
		{name: "line break in audience", setting: "jwt-audience", cfg: jwtauth.Config{Secret: secret, Audience: "a\rb"}},
	} {
		err := tc.cfg.Validate()
		if tc.setting == "" {
			if err != nil {
				t.Errorf("%s: Validate = %v", tc.name, err)
			}
			continue
		}
		if !errors.Is(err, jwtauth.ErrInvalidConfig) || !strings.Contains(err.Error(), ": "+tc.setting+": ") {
			t.Errorf("%s: Validate = %v, want an error naming %s", tc.name, err, tc.setting)
			continue
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: the error is not one line: %q", tc.name, err)
		}
		for _, s := range [][]byte{tc.cfg.Secret, shortSecret, []byte("pass")} {
			if len(s) > 0 && strings.Contains(err.Error(), string(s)) {
				t.Errorf("%s: the error %q holds a secret", tc.name, err)
			}
		}
		if _, nerr := jwtauth.New(tc.cfg, nil); nerr == nil || nerr.Error() != err.Error() {
			t.Errorf("%s: New = %v, want Validate's error", tc.name, nerr)
		}
	}
}

func TestEnabled(t *testing.T) {
	t.Parallel()
	if (&jwtauth.Config{Issuer: "i", Audience: "a", Leeway: time.Second}).Enabled() {
		t.Error("a Config without a key is enabled")
	}
	for _, c := range []jwtauth.Config{{Secret: secret}, {PublicKeyPEM: []byte("x")}, {JWKSURL: "https://x/"}} {
		if !c.Enabled() {
			t.Errorf("%+v is not enabled", c)
		}
	}
	_, err := jwtauth.New(jwtauth.Config{}, nil)
	if !errors.Is(err, jwtauth.ErrInvalidConfig) || !strings.Contains(err.Error(), "jwt-secret, jwt-public-key, jwt-jwks-url") {
		t.Errorf("New without a key = %v", err)
	}
}
