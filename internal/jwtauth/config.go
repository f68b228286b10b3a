package jwtauth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// Defaults and limits of a [Config].
const (
	// DefaultLeeway is the leeway used when Config.Leeway is zero.
	DefaultLeeway = 2 * time.Second
	// MaxLeeway is the largest leeway Validate accepts.
	MaxLeeway = 5 * time.Second
	// MinSecretLen is the shortest HMAC secret Validate accepts, in bytes:
	// the output size of SHA-256 (RFC 7518, section 3.2).
	MinSecretLen = 32
	// MinRSABits is the smallest RSA modulus accepted, from the PEM file or
	// from the JWKS.
	MinRSABits = 2048
	// DefaultJWKSRefresh is the JWKS refresh interval used when
	// Config.JWKSRefresh is zero.
	DefaultJWKSRefresh = 5 * time.Minute
	// MinJWKSRefresh is the shortest JWKS refresh interval Validate
	// accepts, so that the service does not hammer the key server.
	MinJWKSRefresh = time.Second
	// DefaultJWKSRefreshLimit is the least time between two refreshes of
	// the JWKS caused by tokens with an unknown "kid", when
	// Config.JWKSRefreshLimit is zero.
	DefaultJWKSRefreshLimit = 30 * time.Second
	// DefaultJWKSTimeout bounds one fetch of the JWKS when
	// Config.JWKSTimeout is zero.
	DefaultJWKSTimeout = 5 * time.Second
	// MaxJWKSBytes is the largest JWKS document read; a larger one fails
	// the refresh, and the keys already known stay in use.
	MaxJWKSBytes = 1 << 20
	// DefaultCacheSize is the number of verified tokens cached when
	// Config.CacheSize is zero.
	DefaultCacheSize = 4096
	// DefaultCacheTTL is the longest a verified token stays cached when
	// Config.CacheTTL is zero.
	DefaultCacheTTL = time.Minute
)

// Config configures a [Verifier]. Exactly one key source is set: Secret,
// PublicKeyPEM or JWKSURL. The zero values of the other fields select the
// defaults above.
type Config struct {
	// Now is the clock used for "exp", "nbf", "iat" and the cache; nil
	// means time.Now. Tests inject their own.
	Now func() time.Time
	// JWKSURL is the address of a JWK Set (RFC 7517) whose keys sign the
	// tokens: https, or http to a loopback address only. Tokens may use
	// RS*, PS*, ES* and EdDSA, each with a key of its kind; HMAC keys in
	// the set are not used. Keys with "use": "enc" are ignored.
	JWKSURL string
	// Issuer, when set, is the "iss" a token must carry.
	Issuer string
	// Audience, when set, must be one of the token's "aud".
	Audience string
	// Secret is a shared HMAC key (HS256, HS384 and HS512 accepted), at
	// least MinSecretLen bytes.
	Secret []byte
	// PublicKeyPEM is the content of a PEM file holding one public key:
	// a "PUBLIC KEY" (PKIX), "RSA PUBLIC KEY" (PKCS #1) or "CERTIFICATE"
	// block. RSA keys (at least MinRSABits) accept RS256/384/512 and
	// PS256/384/512; ECDSA keys accept the algorithm of their curve only
	// (P-256: ES256, P-384: ES384, P-521: ES512); Ed25519 keys accept
	// EdDSA. Private keys are refused: the verifier needs only the public
	// half.
	PublicKeyPEM []byte
	// Leeway is the clock skew allowed when checking "exp", "nbf" and
	// "iat": a token is accepted until exp+Leeway. Zero means
	// DefaultLeeway; at most MaxLeeway.
	Leeway time.Duration
	// JWKSRefresh is how often the JWKS is fetched again (zero:
	// DefaultJWKSRefresh; at least MinJWKSRefresh).
	JWKSRefresh time.Duration
	// JWKSRefreshLimit is the least time between two fetches caused by
	// tokens that name a key id the set does not hold (zero:
	// DefaultJWKSRefreshLimit). A token with an unknown "kid" that comes
	// sooner is refused (ErrUnknownKey) without a fetch, so that invalid
	// tokens cannot make the service flood the key server.
	JWKSRefreshLimit time.Duration
	// JWKSTimeout bounds one fetch of the JWKS, and so how long Verify
	// may block on a token with an unknown "kid" (zero:
	// DefaultJWKSTimeout).
	JWKSTimeout time.Duration
	// CacheTTL is the longest a verified token stays cached (zero:
	// DefaultCacheTTL); an entry never outlives the token's "exp".
	CacheTTL time.Duration
	// CacheSize is the number of verified tokens cached (zero:
	// DefaultCacheSize; negative: no cache).
	CacheSize int
}

// Enabled reports whether c names a key source, that is whether signed
// tokens are to be verified at all. A server builds a [Verifier] only for
// an enabled Config.
func (c *Config) Enabled() bool {
	return len(c.Secret) > 0 || len(c.PublicKeyPEM) > 0 || c.JWKSURL != ""
}

// Validate checks c. A Config that is not [Enabled] and sets nothing else
// that needs a key (Issuer, Audience) is valid: signed tokens are off.
// Otherwise exactly one key source must be set, and be usable. The error
// wraps [ErrInvalidConfig] and names the setting by its flag name
// (jwt-secret, jwt-public-key, jwt-jwks-url, jwt-issuer, jwt-audience,
// jwt-leeway, ...); it never holds the secret.
//
// Validate parses the PEM key; it does not fetch the JWKS.
func (c *Config) Validate() error {
	_, err := c.check()
	return err
}

// keyKind is the kind of the configured key source.
type keyKind int

const (
	keySecret keyKind = iota + 1
	keyRSA
	keyECDSA
	keyEd25519
	keyJWKS
)

// check validates c and returns the parsed public key (nil unless
// PublicKeyPEM is set).
func (c *Config) check() (any, error) {
	sources := make([]string, 0, 3)
	if len(c.Secret) > 0 {
		sources = append(sources, "jwt-secret")
	}
	if len(c.PublicKeyPEM) > 0 {
		sources = append(sources, "jwt-public-key")
	}
	if c.JWKSURL != "" {
		sources = append(sources, "jwt-jwks-url")
	}
	switch {
	case len(sources) > 1:
		return nil, bad(strings.Join(sources, ", "), "set only one key source")
	case len(sources) == 0 && c.Issuer != "":
		return nil, bad("jwt-issuer", "set without a key (jwt-secret, jwt-public-key or jwt-jwks-url)")
	case len(sources) == 0 && c.Audience != "":
		return nil, bad("jwt-audience", "set without a key (jwt-secret, jwt-public-key or jwt-jwks-url)")
	}
	var key any
	switch {
	case len(c.Secret) > 0:
		if len(c.Secret) < MinSecretLen {
			return nil, bad("jwt-secret", "%d bytes is too short: want at least %d", len(c.Secret), MinSecretLen)
		}
	case len(c.PublicKeyPEM) > 0:
		var err error
		if key, err = parsePublicKey(c.PublicKeyPEM); err != nil {
			return nil, bad("jwt-public-key", "%v", err)
		}
	case c.JWKSURL != "":
		if err := checkJWKSURL(c.JWKSURL); err != nil {
			return nil, bad("jwt-jwks-url", "%v", err)
		}
	}
	if strings.ContainsAny(c.Issuer, "\x00\r\n") {
		return nil, bad("jwt-issuer", "contains a control character")
	}
	if strings.ContainsAny(c.Audience, "\x00\r\n") {
		return nil, bad("jwt-audience", "contains a control character")
	}
	switch {
	case c.Leeway < 0 || c.Leeway > MaxLeeway:
		return nil, bad("jwt-leeway", "must be between 0 and %v, got %v", MaxLeeway, c.Leeway)
	case c.JWKSRefresh != 0 && c.JWKSRefresh < MinJWKSRefresh:
		return nil, bad("jwt-jwks-refresh", "must be at least %v, got %v", MinJWKSRefresh, c.JWKSRefresh)
	case c.JWKSRefreshLimit < 0:
		return nil, bad("jwt-jwks-refresh-limit", "must not be negative, got %v", c.JWKSRefreshLimit)
	case c.JWKSTimeout < 0:
		return nil, bad("jwt-jwks-timeout", "must not be negative, got %v", c.JWKSTimeout)
	case c.CacheTTL < 0:
		return nil, bad("jwt-cache-ttl", "must not be negative, got %v", c.CacheTTL)
	}
	return key, nil
}

func bad(setting, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidConfig, setting, fmt.Sprintf(format, args...))
}

// withDefaults returns c with every zero value replaced by its default.
func (c Config) withDefaults() Config {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Leeway == 0 {
		c.Leeway = DefaultLeeway
	}
	if c.JWKSRefresh == 0 {
		c.JWKSRefresh = DefaultJWKSRefresh
	}
	if c.JWKSRefreshLimit == 0 {
		c.JWKSRefreshLimit = DefaultJWKSRefreshLimit
	}
	if c.JWKSTimeout == 0 {
		c.JWKSTimeout = DefaultJWKSTimeout
	}
	if c.CacheSize == 0 {
		c.CacheSize = DefaultCacheSize
	}
	if c.CacheTTL == 0 {
		c.CacheTTL = DefaultCacheTTL
	}
	return c
}

// parsePublicKey reads the one public key of a PEM file. Its errors say
// what is wrong without quoting the file.
func parsePublicKey(data []byte) (any, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	if next, _ := pem.Decode(rest); next != nil {
		return nil, errors.New("more than one PEM block: want one public key")
	}
	var key any
	switch block.Type {
	case "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PUBLIC KEY block: %w", err)
		}
		key = k
	case "RSA PUBLIC KEY":
		k, err := x509.ParsePKCS1PublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("RSA PUBLIC KEY block: %w", err)
		}
		key = k
	case "CERTIFICATE":
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("CERTIFICATE block: %w", err)
		}
		key = cert.PublicKey
	default:
		if strings.Contains(block.Type, "PRIVATE KEY") {
			return nil, fmt.Errorf("a %s block: give the public key, not the private one", block.Type)
		}
		return nil, fmt.Errorf("a %q block: want PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE", block.Type)
	}
	if _, err := kindOf(key); err != nil {
		return nil, err
	}
	return key, nil
}

// kindOf returns the kind of a public key, or an error for a key this
// package does not verify with.
func kindOf(key any) (keyKind, error) {
	switch k := key.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < MinRSABits {
			return 0, fmt.Errorf("RSA key of %d bits: want at least %d", k.N.BitLen(), MinRSABits)
		}
		return keyRSA, nil
	case *ecdsa.PublicKey:
		if ecdsaAlg(k.Curve) == "" {
			return 0, errors.New("ECDSA key on an unsupported curve: want P-256, P-384 or P-521")
		}
		return keyECDSA, nil
	case ed25519.PublicKey:
		return keyEd25519, nil
	default:
		return 0, fmt.Errorf("unsupported key type %T", key)
	}
}

// ecdsaAlg is the JWS algorithm of an ECDSA curve (RFC 7518, section 3.4),
// or "".
func ecdsaAlg(c elliptic.Curve) string {
	switch c {
	case elliptic.P256():
		return "ES256"
	case elliptic.P384():
		return "ES384"
	case elliptic.P521():
		return "ES512"
	}
	return ""
}

// checkJWKSURL accepts an absolute https URL, or an http one whose host is
// a loopback address: keys fetched in clear text from elsewhere could be
// replaced on the way.
func checkJWKSURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("not a URL")
	}
	if u.Host == "" || u.Hostname() == "" {
		return errors.New("want an absolute URL with a host")
	}
	if u.User != nil {
		return errors.New("credentials in the URL are not supported")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
		return errors.New("plain http only to a loopback address: use https")
	default:
		return fmt.Errorf("scheme %q: want https", u.Scheme)
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
