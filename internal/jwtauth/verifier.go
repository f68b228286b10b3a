package jwtauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"
	"unsafe"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// MaxTokenLen is the longest token Verify reads, in bytes; a longer one is
// [ErrMalformed]. The server's header limit is 16 KiB.
const MaxTokenLen = 8 << 10

// Algorithms accepted for each kind of key.
var (
	hmacAlgs  = []string{"HS256", "HS384", "HS512"}
	rsaAlgs   = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
	ecdsaAlgs = []string{"ES256", "ES384", "ES512"}
	jwksAlgs  = slices.Concat(rsaAlgs, ecdsaAlgs, []string{"EdDSA"})
)

// Reasons the key function refuses a token, mapped to the sentinels.
var (
	errAlgorithm = errors.New("algorithm does not fit the key")
	errNoKey     = errors.New("no usable key")
	errCrit      = errors.New("critical header parameters are not supported")
)

// Verifier verifies tokens and turns them into grants. It is safe for
// concurrent use. Build one with [New]; call Close when done with it.
type Verifier struct {
	now      func() time.Time
	parser   *jwt.Parser
	keyfunc  jwt.Keyfunc
	key      any // the secret ([]byte) or the public key; nil with a JWKS
	jwks     *jwks
	cache    *cache
	cancel   context.CancelFunc
	issuer   string
	audience string
	methods  []string
	ttl      time.Duration
	close    sync.Once
}

// New validates cfg ([Config.Validate]) and returns a Verifier for it. cfg
// must be [Config.Enabled]. log receives the failures of JWKS refreshes
// (nil: discarded); it never receives a token.
//
// With a JWKS, New fetches it before returning, which blocks for up to
// cfg.JWKSTimeout; if that fetch fails, New logs it and still returns a
// Verifier, which refuses every token (ErrUnknownKey) until a refresh
// succeeds: the next periodic one, or one caused by a token's unknown
// "kid". New then starts a goroutine that refreshes the set every
// cfg.JWKSRefresh until Close.
func New(cfg Config, log *slog.Logger) (*Verifier, error) {
	key, err := cfg.check()
	if err != nil {
		return nil, err
	}
	if !cfg.Enabled() {
		return nil, bad("jwt-secret, jwt-public-key, jwt-jwks-url", "none is set: a verifier needs a key")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	v := &Verifier{
		now:      cfg.Now,
		issuer:   cfg.Issuer,
		audience: cfg.Audience,
		ttl:      cfg.CacheTTL,
		cancel:   func() {},
	}
	switch {
	case len(cfg.Secret) > 0:
		v.key = slices.Clone(cfg.Secret)
		v.methods = hmacAlgs
	case key != nil:
		v.key = key
		switch k := key.(type) {
		case *rsa.PublicKey:
			v.methods = rsaAlgs
		case *ecdsa.PublicKey:
			v.methods = []string{ecdsaAlg(k.Curve)}
		case ed25519.PublicKey:
			v.methods = []string{"EdDSA"}
		}
	default:
		ctx, cancel := context.WithCancel(context.Background())
		v.cancel = cancel
		j, err := newJWKS(ctx, &cfg, log)
		if err != nil {
			cancel()
			return nil, err
		}
		v.jwks = j
		v.methods = jwksAlgs
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
	if cfg.CacheSize > 0 {
		v.cache = newCache(cfg.CacheSize)
	}
	return v, nil
}

// Close stops the JWKS refresh goroutine, if any: it ends as soon as it
// sees the cancellation, aborting a fetch under way, and so does a refresh
// that a Verify is waiting for. Close does not block. Verify keeps working
// after Close with the keys it has, without refreshing them. Close is
// idempotent and safe for concurrent use.
func (v *Verifier) Close() {
	v.close.Do(func() {
		v.cancel()
		if v.jwks != nil {
			v.jwks.close()
		}
	})
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
// A token verified before, and still cached, costs a SHA-256 of the token
// and a map lookup under a read lock, with no allocation; the returned
// *Grant is then shared with the other callers that presented it, and must
// not be modified. A token not cached costs a signature check and a few
// dozen allocations. Verify is safe for concurrent use. With a JWKS, a
// token whose "kid" is unknown may make it block while the set is fetched
// again, up to Config.JWKSTimeout.
func (v *Verifier) Verify(token string) (*Grant, error) {
	if token == "" {
		return nil, ErrNoToken
	}
	if len(token) > MaxTokenLen {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrMalformed, MaxTokenLen)
	}
	now := v.now()
	var (
		digest [sha256.Size]byte
		gen    uint64
	)
	if v.cache != nil {
		// The generation is read before verifying: a key removed while the
		// token is being verified leaves its entry stale, not fresh.
		gen = v.generation()
		// Sum256 only reads its argument: the token's bytes need no copy
		// (which would cost an allocation for any real token).
		digest = sha256.Sum256(unsafe.Slice(unsafe.StringData(token), len(token)))
		if g := v.cache.get(&digest, now.UnixNano(), gen); g != nil {
			return g, nil
		}
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
	if v.cache != nil {
		until := now.Add(v.ttl)
		if !g.Expires.IsZero() && g.Expires.Before(until) {
			until = g.Expires
		}
		v.cache.put(&digest, g, until.UnixNano(), gen)
	}
	return g, nil
}

// generation changes whenever a key that signed cached tokens may have
// gone: only a JWKS refresh that removes or replaces a key changes it.
func (v *Verifier) generation() uint64 {
	if v.jwks == nil {
		return 0
	}
	return v.jwks.gen.Load()
}

// lookupKey is the jwt.Keyfunc: it returns the key that checks tok, once
// WithValidMethods has accepted tok's algorithm, and checks that the
// algorithm fits the key (RS/PS for RSA, the curve's ES for ECDSA, EdDSA
// for Ed25519, HS for the secret).
func (v *Verifier) lookupKey(tok *jwt.Token) (any, error) {
	if _, ok := tok.Header["crit"]; ok {
		return nil, errCrit
	}
	alg := tok.Method.Alg()
	if v.jwks == nil {
		if !fits(alg, v.key) {
			return nil, errAlgorithm
		}
		return v.key, nil
	}
	key, err := v.jwks.keyfunc(tok)
	if err != nil {
		if errors.Is(err, jwkset.ErrKeyNotFound) {
			return nil, errNoKey
		}
		return nil, fmt.Errorf("%w: %w", errNoKey, err)
	}
	if set, ok := key.(jwt.VerificationKeySet); ok {
		// No "kid": every key of the set that fits the algorithm.
		fit := set.Keys[:0:0]
		for _, k := range set.Keys {
			if fits(alg, k) {
				fit = append(fit, k)
			}
		}
		if len(fit) == 0 {
			return nil, errNoKey
		}
		return jwt.VerificationKeySet{Keys: fit}, nil
	}
	if !fits(alg, key) {
		if _, err := kindOf(key); err != nil {
			return nil, errNoKey // a weak RSA key, an HMAC key in the set
		}
		return nil, errAlgorithm
	}
	return key, nil
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
	case errors.Is(err, errNoKey):
		return ErrUnknownKey
	case errors.Is(err, jwt.ErrTokenMalformed):
		return ErrMalformed
	case tok != nil && (tok.Method == nil || !slices.Contains(v.methods, tok.Method.Alg())):
		// "alg" missing, unknown to the library ("HS1"), or not one of the
		// key's: the library's ErrTokenUnverifiable or
		// ErrTokenSignatureInvalid.
		return ErrAlgorithm
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return ErrInvalidSignature
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return ErrUnknownKey
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
