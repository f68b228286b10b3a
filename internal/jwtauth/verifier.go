package jwtauth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// MaxTokenLen is the longest token Verify reads, in bytes; a longer one is
// [ErrMalformed]. The server's header limit is 16 KiB.
const MaxTokenLen = 8 << 10

// Algorithms accepted for each kind of key.
var (
	hmacAlgs = []string{"HS256", "HS384", "HS512"}
	rsaAlgs  = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
)

// Reasons the key function refuses a token, mapped to the sentinels.
var (
	errAlgorithm = errors.New("algorithm does not fit the key")
	errCrit      = errors.New("critical header parameters are not supported")
)

// Verifier verifies tokens and turns them into grants. It is safe for
// concurrent use. Build one with [New].
type Verifier struct {
	now      func() time.Time
	parser   *jwt.Parser
	keyfunc  jwt.Keyfunc
	key      any // the secret ([]byte) or the public key
	issuer   string
	audience string
	methods  []string
}

// New validates cfg ([Config.Validate]) and returns a Verifier for it. cfg
// must be [Config.Enabled].
func New(cfg Config) (*Verifier, error) {
	key, err := cfg.check()
	if err != nil {
		return nil, err
	}
	if !cfg.Enabled() {
		return nil, bad("jwt-secret, jwt-public-key", "none is set: a verifier needs a key")
	}
	cfg = cfg.withDefaults()
	v := &Verifier{
		now:      cfg.Now,
		issuer:   cfg.Issuer,
		audience: cfg.Audience,
	}
	if len(cfg.Secret) > 0 {
		v.key = slices.Clone(cfg.Secret)
		v.methods = hmacAlgs
	} else {
		v.key = key
		switch k := key.(type) {
		case *rsa.PublicKey:
			v.methods = rsaAlgs
		case *ecdsa.PublicKey:
			v.methods = []string{ecdsaAlg(k.Curve)}
		case ed25519.PublicKey:
			v.methods = []string{"EdDSA"}
		}
	}
	v.keyfunc = v.lookupKey
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(v.methods),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithTimeFunc(cfg.Now),
		jwt.WithIssuedAt(),
		jwt.WithStrictDecoding(),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	v.parser = jwt.NewParser(opts...)
	return v, nil
}

// Algorithms returns the "alg" values the verifier accepts, for logs. The
// slice is a copy.
func (v *Verifier) Algorithms() []string { return slices.Clone(v.methods) }

// claims are the claims Verify reads.
type claims struct {
	Pillarbox *struct {
		Publish   []string `json:"publish"`
		Subscribe []string `json:"subscribe"`
	} `json:"pillarbox"`
	jwt.RegisteredClaims
}

// Verify checks token (the compact JWS, without "Bearer ") and returns what
// it grants. The error is one of the package's sentinels, possibly wrapped
// ([ErrNoToken] for "", [ErrExpired], [ErrInvalidSignature], ...); it never
// holds the token or its claims.
//
// Verify costs a signature check and a few dozen allocations. It is safe
// for concurrent use and does not block.
func (v *Verifier) Verify(token string) (*Grant, error) {
	if token == "" {
		return nil, ErrNoToken
	}
	if len(token) > MaxTokenLen {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrMalformed, MaxTokenLen)
	}
	var c claims
	tok, err := v.parser.ParseWithClaims(token, &c, v.keyfunc)
	if err != nil {
		return nil, v.mapError(tok, &c, err)
	}
	g := &Grant{Subject: c.Subject}
	if c.ExpiresAt != nil {
		g.Expires = c.ExpiresAt.Time
	}
	if c.Pillarbox != nil {
		if g.publish, err = patterns("publish", c.Pillarbox.Publish); err != nil {
			return nil, err
		}
		if g.subscribe, err = patterns("subscribe", c.Pillarbox.Subscribe); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// lookupKey is the jwt.Keyfunc: it returns the key that checks tok, once
// WithValidMethods has accepted tok's algorithm, and checks that the
// algorithm fits the key (RS/PS for RSA, the curve's ES for ECDSA, EdDSA
// for Ed25519, HS for the secret).
func (v *Verifier) lookupKey(tok *jwt.Token) (any, error) {
	if _, ok := tok.Header["crit"]; ok {
		return nil, errCrit
	}
	if !fits(tok.Method.Alg(), v.key) {
		return nil, errAlgorithm
	}
	return v.key, nil
}

// fits reports whether alg is an algorithm of key's kind, and key is one
// this package accepts.
func fits(alg string, key any) bool {
	if k, ok := key.([]byte); ok {
		return len(k) > 0 && slices.Contains(hmacAlgs, alg)
	}
	kind, err := kindOf(key)
	if err != nil {
		return false
	}
	switch kind {
	case keyRSA:
		return slices.Contains(rsaAlgs, alg)
	case keyECDSA:
		return alg == ecdsaAlg(key.(*ecdsa.PublicKey).Curve)
	case keyEd25519:
		return alg == "EdDSA"
	}
	return false
}

// mapError turns the error of ParseWithClaims into the package's sentinel,
// without any of the library's text (which may quote parts of the token).
func (v *Verifier) mapError(tok *jwt.Token, c *claims, err error) error {
	switch {
	case errors.Is(err, errCrit):
		return fmt.Errorf("%w: %w", ErrMalformed, errCrit)
	case errors.Is(err, errAlgorithm):
		return ErrAlgorithm
	case errors.Is(err, jwt.ErrTokenMalformed):
		return ErrMalformed
	case tok != nil && (tok.Method == nil || !slices.Contains(v.methods, tok.Method.Alg())):
		// "alg" missing, unknown to the library ("HS1"), or not one of the
		// key's: the library's ErrTokenUnverifiable or
		// ErrTokenSignatureInvalid.
		return ErrAlgorithm
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return ErrInvalidSignature
	// Claims are validated only once the signature is good.
	case errors.Is(err, jwt.ErrTokenExpired):
		return ErrExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return ErrNotYetValid
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return ErrIssuedInFuture
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return ErrWrongIssuer
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return ErrWrongAudience
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		if v.issuer != "" && c.Issuer == "" {
			return fmt.Errorf("%w: the token has no iss", ErrWrongIssuer)
		}
		if v.audience != "" && len(c.Audience) == 0 {
			return fmt.Errorf("%w: the token has no aud", ErrWrongAudience)
		}
		return ErrInvalidClaims
	case errors.Is(err, jwt.ErrTokenInvalidClaims):
		return ErrInvalidClaims
	}
	return ErrInvalidToken
}
