package jwtauth_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/jwtauth"
)

// keyCase is one kind of configured key and an algorithm it accepts.
type keyCase struct {
	cfg    func(testing.TB) jwtauth.Config
	method jwt.SigningMethod
	key    func() any // the signing key
	name   string
}

func keyCases() []keyCase {
	secretCfg := func(testing.TB) jwtauth.Config { return jwtauth.Config{Secret: secret} }
	pemCfg := func(pub func() crypto.PublicKey) func(testing.TB) jwtauth.Config {
		return func(tb testing.TB) jwtauth.Config { return jwtauth.Config{PublicKeyPEM: pemFile(tb, pub())} }
	}
	rsaPub := func() crypto.PublicKey { return rsaKey().Public() }
	return []keyCase{
		{name: "HS256", cfg: secretCfg, method: jwt.SigningMethodHS256, key: func() any { return secret }},
		{name: "HS384", cfg: secretCfg, method: jwt.SigningMethodHS384, key: func() any { return secret }},
		{name: "HS512", cfg: secretCfg, method: jwt.SigningMethodHS512, key: func() any { return secret }},
		{name: "RS256", cfg: pemCfg(rsaPub), method: jwt.SigningMethodRS256, key: func() any { return rsaKey() }},
		{name: "RS512", cfg: pemCfg(rsaPub), method: jwt.SigningMethodRS512, key: func() any { return rsaKey() }},
		{name: "PS256", cfg: pemCfg(rsaPub), method: jwt.SigningMethodPS256, key: func() any { return rsaKey() }},
		{name: "PS384", cfg: pemCfg(rsaPub), method: jwt.SigningMethodPS384, key: func() any { return rsaKey() }},
		{name: "ES256", cfg: pemCfg(func() crypto.PublicKey { return p256Key().Public() }), method: jwt.SigningMethodES256, key: func() any { return p256Key() }},
		{name: "ES384", cfg: pemCfg(func() crypto.PublicKey { return p384Key().Public() }), method: jwt.SigningMethodES384, key: func() any { return p384Key() }},
		{name: "ES512", cfg: pemCfg(func() crypto.PublicKey { return p521Key().Public() }), method: jwt.SigningMethodES512, key: func() any { return p521Key() }},
		{name: "EdDSA", cfg: pemCfg(func() crypto.PublicKey { return edKey().Public() }), method: jwt.SigningMethodEdDSA, key: func() any { return edKey() }},
	}
}

func TestVerifyEachKeyKind(t *testing.T) {
	t.Parallel()
	for _, kc := range keyCases() {
		t.Run(kc.name, func(t *testing.T) {
			t.Parallel()
			v := newVerifier(t, kc.cfg(t), nil)
			tok := sign(t, kc.method, kc.key(), claims())
			g := accept(t, v, tok)
			if g.Subject != "user-1" || !g.Expires.Equal(t0.Add(time.Hour)) {
				t.Errorf("grant: subject %q, expires %v", g.Subject, g.Expires)
			}
			if !g.CanPublish("player.1.start") || g.CanPublish("ads") {
				t.Error("the grant does not publish on player.> only")
			}
			if !g.CanSubscribe("player.*") || g.CanSubscribe("player.>") {
				t.Error("the grant does not subscribe to player.* only")
			}
			if got := g.SubscribePatterns(); !slices.Equal(got, []string{"player.*"}) {
				t.Errorf("SubscribePatterns = %q", got)
			}

			// One bit of the signature flipped, or the claims changed
			// under the same signature.
			parts := strings.Split(tok, ".")
			sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
			sig[len(sig)/2] ^= 1
			refuse(t, v, parts[0]+"."+parts[1]+"."+base64.RawURLEncoding.EncodeToString(sig), jwtauth.ErrInvalidSignature)
			other := claims()
			other["sub"] = "user-2"
			forged := strings.Split(sign(t, kc.method, kc.key(), other), ".")[1]
			refuse(t, v, parts[0]+"."+forged+"."+parts[2], jwtauth.ErrInvalidSignature)

			// Signed with another key of the same kind.
			var otherKey any
			switch kc.key().(type) {
			case []byte:
				otherKey = []byte("another secret of at least 32 bytes!")
			case *ecdsa.PrivateKey:
				otherKey = map[string]any{"ES256": p256Key2(), "ES384": mustEC(elliptic.P384()), "ES512": mustEC(elliptic.P521())}[kc.name]
			case ed25519.PrivateKey:
				otherKey = mustEd()
			default:
				otherKey = rsaKey2()
			}
			refuse(t, v, sign(t, kc.method, otherKey, claims()), jwtauth.ErrInvalidSignature)
		})
	}
}

func TestVerifyOtherPEMForms(t *testing.T) {
	t.Parallel()
	tok := sign(t, jwt.SigningMethodRS256, rsaKey(), claims())

	pkcs1 := writePEM(t, "RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&rsaKey().PublicKey))
	accept(t, newVerifier(t, jwtauth.Config{PublicKeyPEM: pkcs1}, nil), tok)

	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "issuer"},
		NotBefore:    t0.Add(-time.Hour),
		NotAfter:     t0.Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, rsaKey().Public(), rsaKey())
	if err != nil {
		t.Fatal(err)
	}
	accept(t, newVerifier(t, jwtauth.Config{PublicKeyPEM: writePEM(t, "CERTIFICATE", der)}, nil), tok)
}

// An algorithm of another kind of key is refused before any signature
// check; above all, a token signed with HMAC whose secret is the public
// key (its PEM file or its DER bytes), which a verifier that let the
// token choose the algorithm would accept.
func TestAlgorithmConfusion(t *testing.T) {
	t.Parallel()
	type pub struct {
		key  crypto.PublicKey
		name string
	}
	for _, p := range []pub{
		{name: "RSA", key: rsaKey().Public()},
		{name: "ECDSA", key: p256Key().Public()},
		{name: "Ed25519", key: edKey().Public()},
	} {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			pemBytes := pemFile(t, p.key)
			der, _ := x509.MarshalPKIXPublicKey(p.key)
			v := newVerifier(t, jwtauth.Config{PublicKeyPEM: pemBytes}, nil)
			for _, m := range []jwt.SigningMethod{jwt.SigningMethodHS256, jwt.SigningMethodHS384, jwt.SigningMethodHS512} {
				for _, hmacKey := range [][]byte{pemBytes, der, []byte(strings.TrimSpace(string(pemBytes)))} {
					refuse(t, v, sign(t, m, hmacKey, claims()), jwtauth.ErrAlgorithm)
				}
			}
		})
	}

	t.Run("asymmetric algorithms with a secret", func(t *testing.T) {
		t.Parallel()
		v := newVerifier(t, jwtauth.Config{Secret: secret}, nil)
		refuse(t, v, sign(t, jwt.SigningMethodRS256, rsaKey(), claims()), jwtauth.ErrAlgorithm)
		refuse(t, v, sign(t, jwt.SigningMethodPS256, rsaKey(), claims()), jwtauth.ErrAlgorithm)
		refuse(t, v, sign(t, jwt.SigningMethodES256, p256Key(), claims()), jwtauth.ErrAlgorithm)
		refuse(t, v, sign(t, jwt.SigningMethodEdDSA, edKey(), claims()), jwtauth.ErrAlgorithm)
	})

	t.Run("another asymmetric kind", func(t *testing.T) {
		t.Parallel()
		v := newVerifier(t, jwtauth.Config{PublicKeyPEM: pemFile(t, rsaKey().Public())}, nil)
		refuse(t, v, sign(t, jwt.SigningMethodES256, p256Key(), claims()), jwtauth.ErrAlgorithm)
		refuse(t, v, sign(t, jwt.SigningMethodEdDSA, edKey(), claims()), jwtauth.ErrAlgorithm)
	})

	t.Run("the other curves' algorithms", func(t *testing.T) {
		t.Parallel()
		v := newVerifier(t, jwtauth.Config{PublicKeyPEM: pemFile(t, p256Key().Public())}, nil)
		refuse(t, v, sign(t, jwt.SigningMethodES384, p384Key(), claims()), jwtauth.ErrAlgorithm)
		refuse(t, v, sign(t, jwt.SigningMethodES512, p521Key(), claims()), jwtauth.ErrAlgorithm)
		if got := v.Algorithms(); !slices.Equal(got, []string{"ES256"}) {
			t.Errorf("Algorithms = %q, want [ES256]", got)
		}
	})
}

// "alg": "none" and its variants, a missing or unknown algorithm.
func TestAlgNone(t *testing.T) {
	t.Parallel()
	payload := `{"sub":"user-1","exp":1999999999,"pillarbox":{"publish":[">"],"subscribe":[">"]}}`
	unsigned := sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims())
	hs := strings.Split(sign(t, jwt.SigningMethodHS256, secret, claims()), ".")
	tokens := map[string]string{
		"none by the library":      unsigned,
		"none with a signature":    strings.TrimSuffix(unsigned, ".") + "." + hs[2],
		"None":                     raw(`{"alg":"None","typ":"JWT"}`, payload, nil),
		"NONE":                     raw(`{"alg":"NONE"}`, payload, nil),
		"nOnE with HS256's sig":    raw(`{"alg":"nOnE"}`, payload, []byte("x")),
		"no alg":                   raw(`{"typ":"JWT"}`, payload, nil),
		"empty alg":                raw(`{"alg":""}`, payload, nil),
		"alg not a string":         raw(`{"alg":256}`, payload, nil),
		"unknown alg":              raw(`{"alg":"HS1"}`, payload, []byte("x")),
		"lower-case hs256":         raw(`{"alg":"hs256"}`, payload, []byte("x")),
		"none header, HS256 parts": raw(`{"alg":"none"}`, payload, nil),
	}
	for kind, cfg := range map[string]jwtauth.Config{
		"secret":  {Secret: secret},
		"RSA":     {PublicKeyPEM: pemFile(t, rsaKey().Public())},
		"Ed25519": {PublicKeyPEM: pemFile(t, edKey().Public())},
	} {
		v := newVerifier(t, cfg, nil)
		for name, tok := range tokens {
			t.Run(kind+"/"+name, func(t *testing.T) {
				refuse(t, v, tok, jwtauth.ErrAlgorithm)
			})
		}
	}
}

func TestMalformed(t *testing.T) {
	t.Parallel()
	v := newVerifier(t, jwtauth.Config{Secret: secret}, nil)
	good := sign(t, jwt.SigningMethodHS256, secret, claims())
	parts := strings.Split(good, ".")
	hmacOf := func(header, payload string) string {
		// A correct HS256 signature over the given parts, so that only
		// their content is wrong.
		enc := base64.RawURLEncoding
		h, p := enc.EncodeToString([]byte(header)), enc.EncodeToString([]byte(payload))
		sig, err := jwt.SigningMethodHS256.Sign(h+"."+p, secret)
		if err != nil {
			t.Fatal(err)
		}
		return h + "." + p + "." + enc.EncodeToString(sig)
	}
	hdr := `{"alg":"HS256","typ":"JWT"}`
	for name, tc := range map[string]struct {
		tok  string
		want error
	}{
		"empty":                {"", jwtauth.ErrNoToken},
		"one segment":          {"abc", jwtauth.ErrMalformed},
		"two segments":         {parts[0] + "." + parts[1], jwtauth.ErrMalformed},
		"four segments":        {good + ".x", jwtauth.ErrMalformed},
		"bearer prefix":        {"Bearer " + good, jwtauth.ErrMalformed},
		"header not base64":    {"!!!." + parts[1] + "." + parts[2], jwtauth.ErrMalformed},
		"header not JSON":      {base64.RawURLEncoding.EncodeToString([]byte("{nope")) + "." + parts[1] + "." + parts[2], jwtauth.ErrMalformed},
		"claims not base64":    {parts[0] + ".%%%." + parts[2], jwtauth.ErrMalformed},
		"claims not JSON":      {hmacOf(hdr, `{"sub":`), jwtauth.ErrMalformed},
		"claims an array":      {hmacOf(hdr, `[1,2]`), jwtauth.ErrMalformed},
		"exp a string":         {hmacOf(hdr, `{"exp":"tomorrow"}`), jwtauth.ErrMalformed},
		"sub a number":         {hmacOf(hdr, `{"sub":42}`), jwtauth.ErrMalformed},
		"pillarbox a string":   {hmacOf(hdr, `{"pillarbox":"all"}`), jwtauth.ErrMalformed},
		"publish a string":     {hmacOf(hdr, `{"pillarbox":{"publish":"a"}}`), jwtauth.ErrMalformed},
		"pattern a number":     {hmacOf(hdr, `{"pillarbox":{"subscribe":["a",1]}}`), jwtauth.ErrMalformed},
		"signature not base64": {parts[0] + "." + parts[1] + ".***", jwtauth.ErrMalformed},
		"padded segment":       {parts[0] + "=." + parts[1] + "." + parts[2], jwtauth.ErrMalformed},
		"crit header":          {hmacOf(`{"alg":"HS256","crit":["exp"],"exp":1}`, `{"sub":"a"}`), jwtauth.ErrMalformed},
		"too long":             {hmacOf(hdr, `{"sub":"`+strings.Repeat("a", jwtauth.MaxTokenLen)+`"}`), jwtauth.ErrMalformed},
	} {
		t.Run(name, func(t *testing.T) {
			refuse(t, v, tc.tok, tc.want)
		})
	}

	// Base64url with non-zero trailing bits decodes to the same bytes as
	// the canonical form: strict decoding refuses it, so that one token
	// has one spelling.
	last := parts[2][len(parts[2])-1]
	alphabet := "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	idx := strings.IndexByte(alphabet, last)
	// HS256's 32-byte signature is 43 characters: the last one carries 4
	// bits and 2 unused ones.
	alt := parts[2][:len(parts[2])-1] + string(alphabet[idx|1])
	if alt != parts[2] {
		refuse(t, v, parts[0]+"."+parts[1]+"."+alt, jwtauth.ErrMalformed)
	}
}

func TestTimeClaims(t *testing.T) {
	t.Parallel()
	at := func(d time.Duration) int64 { return t0.Add(d).Unix() }
	for _, tc := range []struct {
		claims jwt.MapClaims
		want   error
		name   string
		leeway time.Duration
	}{
		{name: "no time claims", claims: jwt.MapClaims{"sub": "a"}},
		{name: "expired", claims: jwt.MapClaims{"exp": at(-time.Hour)}, want: jwtauth.ErrExpired},
		{name: "expired within the default leeway", claims: jwt.MapClaims{"exp": at(-time.Second)}},
		{name: "expired at the default leeway", claims: jwt.MapClaims{"exp": at(-2 * time.Second)}, want: jwtauth.ErrExpired},
		{name: "expired within a 5s leeway", leeway: 5 * time.Second, claims: jwt.MapClaims{"exp": at(-4 * time.Second)}},
		{name: "expired at a 5s leeway", leeway: 5 * time.Second, claims: jwt.MapClaims{"exp": at(-5 * time.Second)}, want: jwtauth.ErrExpired},
		{name: "expired within a 1ns leeway", leeway: time.Nanosecond, claims: jwt.MapClaims{"exp": at(-time.Second)}, want: jwtauth.ErrExpired},
		{name: "not yet valid", claims: jwt.MapClaims{"nbf": at(time.Minute)}, want: jwtauth.ErrNotYetValid},
		{name: "not yet valid within the leeway", claims: jwt.MapClaims{"nbf": at(2 * time.Second)}},
		{name: "not yet valid past the leeway", claims: jwt.MapClaims{"nbf": at(3 * time.Second)}, want: jwtauth.ErrNotYetValid},
		{name: "valid from now", claims: jwt.MapClaims{"nbf": at(0), "exp": at(time.Second)}},
		{name: "issued in the future", claims: jwt.MapClaims{"iat": at(time.Minute)}, want: jwtauth.ErrIssuedInFuture},
		{name: "issued just now within the leeway", claims: jwt.MapClaims{"iat": at(2 * time.Second)}},
		{name: "fractional exp", claims: jwt.MapClaims{"exp": float64(at(0)) + 1.5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := newVerifier(t, jwtauth.Config{Secret: secret, Leeway: tc.leeway}, nil)
			tok := sign(t, jwt.SigningMethodHS256, secret, tc.claims)
			if tc.want != nil {
				refuse(t, v, tok, tc.want)
			} else {
				accept(t, v, tok)
			}
		})
	}
}

func TestIssuerAndAudience(t *testing.T) {
	t.Parallel()
	v := newVerifier(t, jwtauth.Config{Secret: secret, Issuer: "https://idp.example", Audience: "dispatcher"}, nil)
	tok := func(c jwt.MapClaims) string { return sign(t, jwt.SigningMethodHS256, secret, c) }
	accept(t, v, tok(jwt.MapClaims{"iss": "https://idp.example", "aud": "dispatcher"}))
	accept(t, v, tok(jwt.MapClaims{"iss": "https://idp.example", "aud": []string{"other", "dispatcher"}}))
	refuse(t, v, tok(jwt.MapClaims{"iss": "https://evil.example", "aud": "dispatcher"}), jwtauth.ErrWrongIssuer)
	refuse(t, v, tok(jwt.MapClaims{"iss": "https://idp.example/", "aud": "dispatcher"}), jwtauth.ErrWrongIssuer)
	refuse(t, v, tok(jwt.MapClaims{"aud": "dispatcher"}), jwtauth.ErrWrongIssuer)
	refuse(t, v, tok(jwt.MapClaims{"iss": "https://idp.example", "aud": "other"}), jwtauth.ErrWrongAudience)
	refuse(t, v, tok(jwt.MapClaims{"iss": "https://idp.example", "aud": []string{"a", "b"}}), jwtauth.ErrWrongAudience)
	refuse(t, v, tok(jwt.MapClaims{"iss": "https://idp.example"}), jwtauth.ErrWrongAudience)
	refuse(t, v, tok(jwt.MapClaims{"iss": "https://idp.example", "aud": []string{}}), jwtauth.ErrWrongAudience)
	refuse(t, v, tok(jwt.MapClaims{"iss": "https://idp.example", "aud": "Dispatcher"}), jwtauth.ErrWrongAudience)

	// Without them configured, iss and aud are not checked.
	open := newVerifier(t, jwtauth.Config{Secret: secret}, nil)
	accept(t, open, tok(jwt.MapClaims{"iss": "anyone", "aud": "anything"}))
}

func TestGrantFromClaims(t *testing.T) {
	t.Parallel()
	v := newVerifier(t, jwtauth.Config{Secret: secret}, nil)
	tok := func(pillarbox any) string {
		c := jwt.MapClaims{"sub": "s"}
		if pillarbox != nil {
			c["pillarbox"] = pillarbox
		}
		return sign(t, jwt.SigningMethodHS256, secret, c)
	}

	for name, p := range map[string]any{
		"no pillarbox claim": nil,
		"empty claim":        map[string]any{},
		"empty lists":        map[string]any{"publish": []string{}, "subscribe": []string{}},
		"null lists":         map[string]any{"publish": nil, "subscribe": nil},
	} {
		g := accept(t, v, tok(p))
		if g.CanPublish("default") || g.CanSubscribe("default") || g.SubscribePatterns() != nil {
			t.Errorf("%s: the grant allows something", name)
		}
		if g.Subject != "s" || !g.Expires.IsZero() {
			t.Errorf("%s: subject %q, expires %v", name, g.Subject, g.Expires)
		}
	}

	g := accept(t, v, tok(map[string]any{
		"publish":   []string{"default", "player.*.start"},
		"subscribe": []string{"ads", "player.>", "ads", "*"},
	}))
	if !g.CanPublish("default") || !g.CanPublish("player.1.start") || g.CanPublish("player.1.stop") || g.CanPublish("player.*.start") {
		t.Error("publish patterns not applied")
	}
	if got := g.SubscribePatterns(); !slices.Equal(got, []string{"ads", "player.>", "*"}) {
		t.Errorf("SubscribePatterns = %q, want each once in order", got)
	}
	got := g.SubscribePatterns()
	got[0] = "changed"
	if g.SubscribePatterns()[0] != "ads" {
		t.Error("SubscribePatterns returns the grant's own slice")
	}

	// Invalid patterns make the token invalid, with the list and the
	// position in the error, not the pattern.
	for _, tc := range []struct {
		pillarbox map[string]any
		where     string
	}{
		{map[string]any{"publish": []string{"player", "player..start"}}, "publish[1]"},
		{map[string]any{"publish": []string{""}}, "publish[0]"},
		{map[string]any{"subscribe": []string{"player", "player.>", "player.>.start"}}, "subscribe[2]"},
		{map[string]any{"subscribe": []string{"sécurité"}}, "subscribe[0]"},
		{map[string]any{"subscribe": []string{"topic-" + strings.Repeat("x", 64)}}, "subscribe[0]"},
		{map[string]any{"publish": []string{"player*"}, "subscribe": []string{"player"}}, "publish[0]"},
		{map[string]any{"publish": []string{"player"}, "subscribe": []string{"player start"}}, "subscribe[0]"},
	} {
		bad := tok(tc.pillarbox)
		_, err := v.Verify(bad)
		if !errors.Is(err, jwtauth.ErrInvalidPattern) || !strings.Contains(err.Error(), tc.where) {
			t.Errorf("%v: Verify = %v, want ErrInvalidPattern at %s", tc.pillarbox, err, tc.where)
			continue
		}
		for _, list := range tc.pillarbox {
			checkSafe(t, err, bad, list.([]string)...)
		}
	}
}

// Every error of Verify, whatever the token holds, says why without any of
// it: a distinctive value in each place of many bad tokens never shows.
func TestErrorsNeverHoldTheToken(t *testing.T) {
	t.Parallel()
	const marker = "SECRETMARKER"
	clock := newClock()
	v := newVerifier(t, jwtauth.Config{Secret: secret, Issuer: "iss", Audience: "aud"}, clock)
	c := func(extra jwt.MapClaims) jwt.MapClaims {
		m := jwt.MapClaims{"sub": marker, "iss": "iss", "aud": "aud", "jti": marker}
		for k, val := range extra {
			m[k] = val
		}
		return m
	}
	hs := func(m jwt.MapClaims) string { return sign(t, jwt.SigningMethodHS256, secret, m, "kid", marker) }
	tokens := []string{
		hs(c(jwt.MapClaims{"exp": t0.Add(-time.Hour).Unix()})),
		hs(c(jwt.MapClaims{"nbf": t0.Add(time.Hour).Unix()})),
		hs(c(jwt.MapClaims{"iat": t0.Add(time.Hour).Unix()})),
		hs(c(jwt.MapClaims{"iss": marker})),
		hs(c(jwt.MapClaims{"aud": marker})),
		hs(c(jwt.MapClaims{"pillarbox": map[string]any{"publish": []string{marker + ".."}}})),
		hs(c(jwt.MapClaims{"pillarbox": map[string]any{"subscribe": []string{marker, marker + " x"}}})),
		hs(c(jwt.MapClaims{"exp": marker})),
		sign(t, jwt.SigningMethodHS256, []byte(marker+marker+marker), c(nil)),
		sign(t, jwt.SigningMethodRS256, rsaKey(), c(nil), "kid", marker),
		raw(`{"alg":"`+marker+`"}`, `{"sub":"`+marker+`"}`, []byte(marker)),
		raw(`{"alg":"none","kid":"`+marker+`"}`, `{"sub":"`+marker+`"}`, nil),
		raw(`{"alg":"HS256","`+marker+`":1`, `{}`, nil),
		raw(`{"alg":"HS256"}`, `{"sub":"`+marker, nil),
		raw(`{"alg":"HS256"}`, `{"sub":"`+marker+`"}`, []byte(marker)),
		marker + "." + marker + "." + marker,
		marker,
		"a" + marker + "\x00\xff" + marker,
	}
	for _, tok := range tokens {
		_, err := v.Verify(tok)
		if err == nil {
			t.Fatalf("a bad token is accepted")
		}
		checkSafe(t, err, tok, marker, strings.ToLower(marker))
	}
}

func TestWWWAuthenticate(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, `Bearer`},
		{jwtauth.ErrNoToken, `Bearer`},
		{jwtauth.ErrExpired, `Bearer error="invalid_token", error_description="token expired"`},
		{jwtauth.ErrInvalidSignature, `Bearer error="invalid_token", error_description="invalid signature"`},
		{jwtauth.ErrWrongIssuer, `Bearer error="invalid_token", error_description="wrong issuer"`},
		{jwtauth.ErrAlgorithm, `Bearer error="invalid_token", error_description="signing algorithm not accepted"`},
		{jwtauth.ErrNotGranted, `Bearer error="insufficient_scope", error_description="topic not granted"`},
		{errors.Join(errors.New("x"), jwtauth.ErrNotYetValid), `Bearer error="invalid_token", error_description="token not yet valid"`},
		{errors.New(`other "package" error`), `Bearer error="invalid_token", error_description="invalid token"`},
	} {
		if got := jwtauth.WWWAuthenticate(tc.err); got != tc.want {
			t.Errorf("WWWAuthenticate(%v) = %s, want %s", tc.err, got, tc.want)
		}
	}

	// Every sentinel's description is a valid RFC 6750 error_description
	// (%x20-21 / %x23-5B / %x5D-7E) and names the reason.
	for _, e := range []error{
		jwtauth.ErrMalformed, jwtauth.ErrAlgorithm, jwtauth.ErrUnknownKey, jwtauth.ErrInvalidSignature,
		jwtauth.ErrExpired, jwtauth.ErrNotYetValid, jwtauth.ErrIssuedInFuture, jwtauth.ErrWrongIssuer,
		jwtauth.ErrWrongAudience, jwtauth.ErrInvalidPattern, jwtauth.ErrInvalidClaims, jwtauth.ErrInvalidToken,
	} {
		if !strings.HasPrefix(e.Error(), "jwtauth: ") {
			t.Errorf("%q lacks the package prefix", e)
		}
		h := jwtauth.WWWAuthenticate(fmt.Errorf("wrapped: %w", e))
		desc, ok := strings.CutPrefix(h, `Bearer error="invalid_token", error_description="`)
		desc, ok2 := strings.CutSuffix(desc, `"`)
		if !ok || !ok2 || desc != strings.TrimPrefix(e.Error(), "jwtauth: ") {
			t.Errorf("WWWAuthenticate(%v) = %s", e, h)
		}
		for _, r := range desc {
			if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
				t.Errorf("description %q holds %q", desc, r)
			}
		}
	}
}

func TestWWWAuthenticateDoesNotAllocate(t *testing.T) {
	err := fmt.Errorf("%w: detail", jwtauth.ErrExpired)
	if n := testing.AllocsPerRun(100, func() { _ = jwtauth.WWWAuthenticate(err) }); n != 0 {
		t.Errorf("WWWAuthenticate allocates %v times", n)
	}
}
