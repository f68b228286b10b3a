// Package jwtauth verifies signed JSON Web Tokens (RFC 7519) that grant
// access per topic: which topics a producer may publish on and which topics
// (or topic patterns) a listener may subscribe to.
//
// A [Verifier] is built from a [Config] that names exactly one key source: a
// shared HMAC secret (HS256, HS384, HS512), a public key in a PEM file (RSA:
// RS256/384/512 and PS256/384/512; ECDSA: ES256, ES384 or ES512, the one that
// matches the curve; Ed25519: EdDSA), or a JWKS endpoint, fetched at start,
// refreshed periodically and, rate-limited, when a token names a key id it
// does not know, so that keys rotate without a restart. Only the algorithms
// of the configured key are accepted: "alg": "none", and tokens whose
// algorithm belongs to another kind of key (an HS256 token signed with the
// bytes of the configured public key, the classic algorithm-confusion
// attack), are refused.
//
// [Verifier.Verify] checks the signature, "exp" and "nbf" (with a small
// leeway), "iat" (not in the future), "iss" and "aud" when configured, and
// the "pillarbox" claim:
//
//	{"sub": "player-42", "exp": 1767225600,
//	 "pillarbox": {"publish": ["player.42.>"], "subscribe": ["player.*", "ads"]}}
//
// and returns a [Grant]. Topic patterns follow the NATS subject wildcard
// rules: a pattern is a topic name (1 to 64 characters from A-Z a-z 0-9 . _ -,
// dots separating non-empty segments) where a segment may be "*" (exactly one
// segment) and the last segment may be ">" (one or more trailing segments).
// See package topic, [Grant.CanPublish] and [Grant.CanSubscribe].
//
// Verified tokens are cached, keyed by their SHA-256 digest, so that a
// producer that sends the same token with every POST pays for one signature
// check, not one per request.
//
// Errors are the sentinel errors below (possibly wrapped with a detail that
// names a position, never a value); none of them ever contains the token or
// anything read from it. [WWWAuthenticate] turns one into the RFC 6750
// WWW-Authenticate header value of a 401 or 403 answer.
package jwtauth

import (
	"errors"
	"strings"
)

// Sentinel errors. Verify returns one of them, possibly wrapped; test with
// errors.Is. Their text, and that of the errors that wrap them, holds
// neither the token nor any of its claims.
var (
	// ErrNoToken is returned for an empty token: the request carried none.
	ErrNoToken = errors.New("jwtauth: no token")
	// ErrMalformed is returned for a token that is not a well-formed JWS
	// compact serialisation (three base64url segments, JSON header and
	// claims of the right types), is longer than [MaxTokenLen], or carries
	// a "crit" header.
	ErrMalformed = errors.New("jwtauth: malformed token")
	// ErrAlgorithm is returned for a token whose "alg" is not one the
	// configured key accepts: "none", an unknown algorithm, or the
	// algorithm of another kind of key.
	ErrAlgorithm = errors.New("jwtauth: signing algorithm not accepted")
	// ErrUnknownKey is returned when no configured key can check the
	// token: with a JWKS, the "kid" is unknown even after a refresh (or a
	// refresh was not allowed yet), or the key is unusable (an RSA key of
	// fewer than 2048 bits, a key for encryption).
	ErrUnknownKey = errors.New("jwtauth: unknown signing key")
	// ErrInvalidSignature is returned for a token whose signature does not
	// match its content and the key.
	ErrInvalidSignature = errors.New("jwtauth: invalid signature")
	// ErrExpired is returned for a token past its "exp" (plus the leeway).
	ErrExpired = errors.New("jwtauth: token expired")
	// ErrNotYetValid is returned for a token before its "nbf" (minus the
	// leeway).
	ErrNotYetValid = errors.New("jwtauth: token not yet valid")
	// ErrIssuedInFuture is returned for a token whose "iat" is in the
	// future (beyond the leeway).
	ErrIssuedInFuture = errors.New("jwtauth: token issued in the future")
	// ErrWrongIssuer is returned when an issuer is configured and the
	// token's "iss" is another one, or missing.
	ErrWrongIssuer = errors.New("jwtauth: wrong issuer")
	// ErrWrongAudience is returned when an audience is configured and the
	// token's "aud" does not list it, or is missing.
	ErrWrongAudience = errors.New("jwtauth: wrong audience")
	// ErrInvalidPattern is returned for a token whose "pillarbox" claim
	// holds a topic pattern that topic.ValidPattern refuses. The wrapping
	// error names the list and the position ("subscribe[2]").
	ErrInvalidPattern = errors.New("jwtauth: invalid topic pattern")
	// ErrInvalidClaims is returned for a token whose registered claims
	// cannot be read (a wrongly typed "exp", for instance).
	ErrInvalidClaims = errors.New("jwtauth: invalid claims")
	// ErrInvalidToken is returned for any other reason to refuse a token.
	ErrInvalidToken = errors.New("jwtauth: invalid token")
	// ErrNotGranted is not returned by Verify: it is for the server to
	// report a valid token that does not grant the topic asked for
	// (403 Forbidden); [WWWAuthenticate] maps it to "insufficient_scope".
	ErrNotGranted = errors.New("jwtauth: topic not granted")
	// ErrInvalidConfig is wrapped by the errors of [Config.Validate] and
	// [New], which name the setting (jwt-secret, jwt-public-key,
	// jwt-jwks-url, jwt-issuer, jwt-audience, ...).
	ErrInvalidConfig = errors.New("jwtauth: invalid configuration")
)

// tokenErrors are the errors a token can be refused with, most specific
// first: the first one an error matches gives its error_description.
var tokenErrors = []error{
	ErrMalformed, ErrAlgorithm, ErrUnknownKey, ErrInvalidSignature,
	ErrExpired, ErrNotYetValid, ErrIssuedInFuture, ErrWrongIssuer,
	ErrWrongAudience, ErrInvalidPattern, ErrInvalidClaims, ErrInvalidToken,
}

// WWWAuthenticate returns the value of the WWW-Authenticate header that
// answers a request refused with err (RFC 6750, section 3):
//
//   - `Bearer` for nil or [ErrNoToken] (a request without credentials gets
//     no error code);
//   - `Bearer error="insufficient_scope", error_description="topic not
//     granted"` for [ErrNotGranted], to go with 403 Forbidden;
//   - `Bearer error="invalid_token", error_description="token expired"`
//     (the sentinel's text without the "jwtauth: " prefix) for the other
//     errors of this package, to go with 401 Unauthorized; errors of other
//     packages get error_description="invalid token".
//
// The description is one of this package's fixed strings, never text from
// the token. WWWAuthenticate is safe for concurrent use and does not
// allocate: the values are built once.
func WWWAuthenticate(err error) string {
	switch {
	case err == nil || errors.Is(err, ErrNoToken):
		return "Bearer"
	case errors.Is(err, ErrNotGranted):
		return insufficientScope
	}
	for i, e := range tokenErrors {
		if errors.Is(err, e) {
			return invalidTokenHeaders[i]
		}
	}
	return invalidTokenHeaders[len(invalidTokenHeaders)-1] // ErrInvalidToken's
}

var (
	insufficientScope   = `Bearer error="insufficient_scope", error_description="` + description(ErrNotGranted) + `"`
	invalidTokenHeaders = func() []string {
		h := make([]string, len(tokenErrors))
		for i, e := range tokenErrors {
			h[i] = `Bearer error="invalid_token", error_description="` + description(e) + `"`
		}
		return h
	}()
)

// description is a sentinel's text without the package prefix: ASCII
// letters and spaces, as RFC 6750 allows in error_description.
func description(sentinel error) string {
	return strings.TrimPrefix(sentinel.Error(), "jwtauth: ")
}
