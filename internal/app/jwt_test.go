package app_test

// Signed tokens (JSON Web Tokens) through the running service: app.Run with
// the real flags on a loopback port, tokens minted here, every answer read
// over HTTP. Streams, limits and logs are in jwt_stream_test.go, the JWKS
// in jwt_jwks_test.go.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestJWTKeyKinds: each kind of key verifies its tokens: a token signed
// with the configured key publishes and listens on what it grants; one
// signed with another key of the same kind is refused (401, invalid
// signature) on both endpoints.
func TestJWTKeyKinds(t *testing.T) {
	t.Parallel()
	otherP384 := must(ecdsa.GenerateKey(elliptic.P384(), rand.Reader))
	for _, kind := range []struct {
		key, other any
		method     jwt.SigningMethod
		args       func(t *testing.T) []string
		name       string
	}{
		{name: "HMAC HS256", method: jwt.SigningMethodHS256, key: []byte(jwtSecret), other: []byte("another-secret-0123456789-abcdef"),
			args: func(*testing.T) []string { return []string{"-jwt-secret", jwtSecret} }},
		{name: "HMAC HS512", method: jwt.SigningMethodHS512, key: []byte(jwtSecret), other: []byte("another-secret-0123456789-abcdef"),
			args: func(*testing.T) []string { return []string{"-jwt-secret", jwtSecret} }},
		{name: "RSA RS256", method: jwt.SigningMethodRS256, key: jwtRSA(), other: jwtRSAOther(),
			args: func(t *testing.T) []string { return []string{"-jwt-public-key", publicPEM(t, jwtRSA().Public())} }},
		{name: "RSA PS384", method: jwt.SigningMethodPS384, key: jwtRSA(), other: jwtRSAOther(),
			args: func(t *testing.T) []string { return []string{"-jwt-public-key", publicPEM(t, jwtRSA().Public())} }},
		{name: "ECDSA P-256 ES256", method: jwt.SigningMethodES256, key: jwtP256(), other: jwtP256b(),
			args: func(t *testing.T) []string { return []string{"-jwt-public-key", publicPEM(t, jwtP256().Public())} }},
		{name: "ECDSA P-384 ES384", method: jwt.SigningMethodES384, key: jwtP384(), other: otherP384,
			args: func(t *testing.T) []string { return []string{"-jwt-public-key", publicPEM(t, jwtP384().Public())} }},
		{name: "Ed25519 EdDSA", method: jwt.SigningMethodEdDSA, key: jwtEd(), other: jwtEdOther(),
			args: func(t *testing.T) []string { return []string{"-jwt-public-key", publicPEM(t, jwtEd().Public())} }},
	} {
		t.Run(kind.name, func(t *testing.T) {
			t.Parallel()
			a := startAuthApp(t, kind.args(t)...)
			c := grantClaims("kind-test", time.Hour, []string{"player.>"}, []string{"player.*"})
			tok := mint(t, kind.method, kind.key, c)
			l := a.listen(t, "", bearer(tok))
			if got := l.comment("allowed "); !strings.HasPrefix(got, "allowed player.*; expires ") {
				t.Errorf("greeting %q: want the token's grant", l.greeting)
			}
			a.mustPublish(t, "player.1", `{"n":1}`, bearer(tok))
			l.expect(t, "listener", `player.1 {"n":1}`)

			forged := mint(t, kind.method, kind.other, c)
			const desc = "jwtauth: invalid signature"
			checkRefused(t, "POST with another key's token", a.publish(t, "player.1", `{"n":2}`, bearer(forged)),
				http.StatusUnauthorized, "invalid token: "+desc, invalidToken(desc))
			checkRefused(t, "GET with another key's token", a.do(t, http.MethodGet, "/events", "", bearer(forged)),
				http.StatusUnauthorized, "invalid token: "+desc, invalidToken(desc))
		})
	}
}

// TestJWTRefusedTokens: a token that does not verify is refused with 401,
// a JSON error and a WWW-Authenticate header that say why (RFC 6750), on
// POST and on GET (bearer or cookie), and neither holds the token. A
// request without a token gets the bare challenge.
func TestJWTRefusedTokens(t *testing.T) {
	t.Parallel()
	const issuer, audience = "https://issuer.example", "dispatcher"
	a := startAuthApp(t, "-jwt-secret", jwtSecret, "-jwt-issuer", issuer, "-jwt-audience", audience)
	good := func() jwt.MapClaims {
		c := grantClaims("refused-test", time.Hour, []string{">"}, []string{">"})
		c["iss"], c["aud"] = issuer, audience
		return c
	}
	with := func(key string, v any) jwt.MapClaims {
		c := good()
		if v == nil {
			delete(c, key)
		} else {
			c[key] = v
		}
		return c
	}
	now := time.Now()
	a.mustPublish(t, "x", `{"ok":true}`, bearer(hs256(t, good())))
	a.listen(t, "", bearer(hs256(t, good()))).close()

	badPattern := good()
	badPattern["pillarbox"] = map[string]any{"subscribe": []string{"player", "player..x"}}
	for _, tc := range []struct {
		name, token, desc string
	}{
		{"wrong issuer", hs256(t, with("iss", "https://elsewhere.example")), "jwtauth: wrong issuer"},
		{"no issuer", hs256(t, with("iss", nil)), "jwtauth: wrong issuer: the token has no iss"},
		{"wrong audience", hs256(t, with("aud", "someone-else")), "jwtauth: wrong audience"},
		{"no audience", hs256(t, with("aud", nil)), "jwtauth: wrong audience: the token has no aud"},
		{"expired", hs256(t, with("exp", now.Add(-time.Minute).Unix())), "jwtauth: token expired"},
		{"not yet valid", hs256(t, with("nbf", now.Add(time.Hour).Unix())), "jwtauth: token not yet valid"},
		{"issued in the future", hs256(t, with("iat", now.Add(time.Hour).Unix())), "jwtauth: token issued in the future"},
		{"alg none", unsigned(t, good()), "jwtauth: signing algorithm not accepted"},
		{"another secret", mint(t, jwt.SigningMethodHS256, []byte("another-secret-0123456789-abcdef"), good()), "jwtauth: invalid signature"},
		{"an RSA token", mint(t, jwt.SigningMethodRS256, jwtRSA(), good()), "jwtauth: signing algorithm not accepted"},
		{"malformed", "not.a.token", "jwtauth: malformed token"},
		{"invalid pattern", hs256(t, badPattern), "jwtauth: invalid topic pattern: subscribe[1]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, req := range []struct {
				cred         credential
				method, path string
			}{
				{bearer(tc.token), http.MethodPost, "/api/events?topic=x"},
				{bearer(tc.token), http.MethodGet, "/events"},
				{cookie(tc.token), http.MethodGet, "/events?topic=x"},
			} {
				r := a.do(t, req.method, req.path, `{"refused":true}`, req.cred)
				checkRefused(t, req.method+" "+req.path, r, http.StatusUnauthorized, "invalid token: "+tc.desc, invalidToken(tc.desc))
				checkNoTokenIn(t, r, tc.token)
			}
		})
	}
	t.Run("no token", func(t *testing.T) {
		checkRefused(t, "POST", a.publish(t, "x", `{"refused":true}`, noCredential),
			http.StatusUnauthorized, "missing or invalid publish token", realm)
		checkRefused(t, "GET", a.do(t, http.MethodGet, "/events", "", noCredential),
			http.StatusUnauthorized, "missing or invalid listen token", realm)
		checkRefused(t, "POST with an empty bearer", a.publish(t, "x", `{"refused":true}`, bearer("")),
			http.StatusUnauthorized, "missing or invalid publish token", realm)
	})
	if h := a.health(t); h.Rejected["unauthorized"] != 14 || h.TurnedAway["unauthorized"] != 25 {
		t.Errorf("/health counts %d POSTs and %d listeners refused as unauthorized, want 14 and 25",
			h.Rejected["unauthorized"], h.TurnedAway["unauthorized"])
	}
}

// checkNoTokenIn fails t if the answer's body or headers hold the token or
// one of its segments.
func checkNoTokenIn(t testing.TB, r reply, token string) {
	t.Helper()
	var all strings.Builder
	all.WriteString(r.body)
	for k, vs := range r.header {
		all.WriteString(k + ": " + strings.Join(vs, ", ") + "\n")
	}
	for _, part := range append([]string{token}, strings.Split(token, ".")...) {
		if len(part) >= 8 && strings.Contains(all.String(), part) {
			t.Errorf("the answer holds %q, from the token:\n%s", part, all.String())
		}
	}
}

// TestJWTAlgorithmConfusion: with a public key configured, an HS256 token
// whose HMAC key is the public key file's bytes (the classic confusion
// attack), an "alg": "none" token and a token of another kind of key are
// refused; the key's own algorithm is accepted.
func TestJWTAlgorithmConfusion(t *testing.T) {
	t.Parallel()
	for _, kind := range []struct {
		key    any
		pub    any
		method jwt.SigningMethod
		name   string
	}{
		{name: "RSA", key: jwtRSA(), pub: jwtRSA().Public(), method: jwt.SigningMethodRS256},
		{name: "ECDSA", key: jwtP256(), pub: jwtP256().Public(), method: jwt.SigningMethodES256},
		{name: "Ed25519", key: jwtEd(), pub: jwtEd().Public(), method: jwt.SigningMethodEdDSA},
	} {
		t.Run(kind.name, func(t *testing.T) {
			t.Parallel()
			file := publicPEM(t, kind.pub)
			pemBytes, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			a := startAuthApp(t, "-jwt-public-key", file)
			c := grantClaims("confusion-test", time.Hour, []string{">"}, []string{">"})
			a.mustPublish(t, "x", `{"n":1}`, bearer(mint(t, kind.method, kind.key, c)))
			const desc = "jwtauth: signing algorithm not accepted"
			for _, bad := range []struct{ name, token string }{
				{"HS256 with the public key as secret", mint(t, jwt.SigningMethodHS256, pemBytes, c)},
				{"HS512 with the public key as secret", mint(t, jwt.SigningMethodHS512, pemBytes, c)},
				{"alg none", unsigned(t, c)},
				{"another kind of key", mint(t, jwt.SigningMethodES384, jwtP384(), c)},
			} {
				checkRefused(t, "POST, "+bad.name, a.publish(t, "x", `{"n":2}`, bearer(bad.token)),
					http.StatusUnauthorized, "invalid token: "+desc, invalidToken(desc))
				checkRefused(t, "GET, "+bad.name, a.do(t, http.MethodGet, "/events", "", inQuery(bad.token)),
					http.StatusUnauthorized, "invalid token: "+desc, invalidToken(desc))
			}
		})
	}
}

// TestJWTPublishPerTopic: a producer publishes on the topics its token's
// publish patterns match, and gets 403 naming the topic for any other
// (the default topic included), with nothing broadcast.
func TestJWTPublishPerTopic(t *testing.T) {
	t.Parallel()
	a := startAuthApp(t, "-jwt-secret", jwtSecret)
	all := a.listen(t, "", bearer(hs256(t, grantClaims("everything", time.Hour, nil, []string{">"}))))
	if got := all.comment("allowed "); !strings.HasPrefix(got, "allowed >; expires ") {
		t.Errorf("greeting %q: want ': allowed >; expires ...'", all.greeting)
	}
	producer := bearer(hs256(t, grantClaims("producer", time.Hour, []string{"player.>", "ads"}, nil)))
	forbidden := 0
	for _, tc := range []struct {
		cred  credential
		topic string
		ok    bool
	}{
		{producer, "player.1", true},
		{producer, "player", false}, // ">" needs at least one more segment
		{producer, "video", false},
		{producer, "", false}, // the default topic, not granted
		{producer, "ads", true},
		{producer, "ads.x", false},
		{producer, "player.1.start", true},
		{bearer(hs256(t, grantClaims("listener-only", time.Hour, nil, []string{">"}))), "player.1", false},
		{bearer(hs256(t, jwt.MapClaims{"sub": "no-claim", "exp": time.Now().Add(time.Hour).Unix()})), "player.1", false},
	} {
		r := a.publish(t, tc.topic, `{"topic":"`+tc.topic+`"}`, tc.cred)
		if tc.ok {
			if r.status != http.StatusOK {
				t.Errorf("POST on %q: %d %s, want 200", tc.topic, r.status, r.body)
			}
			continue
		}
		forbidden++
		name := tc.topic
		if name == "" {
			name = "default"
		}
		checkRefused(t, "POST on "+name, r, http.StatusForbidden, `the token does not allow publishing on "`+name+`"`, insufficientScope)
	}
	// Only the allowed ones were broadcast, in order.
	all.expect(t, "listener to every topic",
		`player.1 {"topic":"player.1"}`, `ads {"topic":"ads"}`, `player.1.start {"topic":"player.1.start"}`)
	a.mustPublish(t, "player.2", `{"last":true}`, producer)
	all.expect(t, "listener to every topic", `player.2 {"last":true}`)
	if h := a.health(t); h.Rejected["forbidden"] != uint64(forbidden) {
		t.Errorf("/health counts %d POSTs forbidden, want %d", h.Rejected["forbidden"], forbidden)
	}
}

// TestJWTListenPerTopicAndPattern: a listener may ask for the topics and
// patterns its token's subscribe patterns cover, with the token as a bearer
// token, a cookie or a query parameter; any other is 403 naming it. A token
// that grants no subscription cannot listen at all.
func TestJWTListenPerTopicAndPattern(t *testing.T) {
	t.Parallel()
	a := startAuthApp(t, "-jwt-secret", jwtSecret)
	tok := hs256(t, grantClaims("listener", time.Hour, nil, []string{"player.*", "ads"}))
	forbidden := 0
	for how, cred := range map[string]credential{"bearer": bearer(tok), "cookie": cookie(tok), "query": inQuery(tok)} {
		for _, query := range []string{"", "topic=player.1", "topic=ads", "topic=player.*", "topic=player.1&topic=ads&topic=player.*"} {
			if r := a.do(t, http.MethodGet, "/events?"+query, "", cred); r.status != http.StatusOK {
				t.Errorf("%s, %q: %d %s, want a stream", how, query, r.status, r.body)
			}
		}
		for _, tc := range []struct{ query, named string }{
			{"topic=video", "video"},
			{"topic=player", "player"},
			{"topic=player.>", "player.>"},
			{"topic=player.1.x", "player.1.x"},
			{"topic=*", "*"},
			{"topic=>", ">"},
			{"topic=ads.*", "ads.*"},
			{"topic=player.1&topic=video", "video"},
		} {
			forbidden++
			checkRefused(t, how+", "+tc.query, a.do(t, http.MethodGet, "/events?"+tc.query, "", cred),
				http.StatusForbidden, `the token does not allow listening to "`+tc.named+`"`, insufficientScope)
		}
	}
	forbidden++
	publisher := hs256(t, grantClaims("publisher", time.Hour, []string{">"}, nil))
	checkRefused(t, "a token without subscribe patterns", a.do(t, http.MethodGet, "/events", "", bearer(publisher)),
		http.StatusForbidden, `the token does not allow listening to "any topic"`, insufficientScope)
	if h := a.health(t); h.TurnedAway["forbidden"] != uint64(forbidden) {
		t.Errorf("/health counts %d listeners forbidden, want %d", h.TurnedAway["forbidden"], forbidden)
	}
}

// TestJWTStaticTokensBesideSignedOnes: static tokens (-publish-token,
// -listen-token) keep working beside signed tokens and allow everything; a
// signed token is held to its grant; a token of neither kind is refused,
// and a static token of one kind does not open the other endpoint.
func TestJWTStaticTokensBesideSignedOnes(t *testing.T) {
	t.Parallel()
	a := startAuthApp(t, "-jwt-secret", jwtSecret, "-publish-token", "static-publish-1,static-publish-2",
		"-listen-token", "static-listen")
	static := a.listen(t, "", bearer("static-listen"))
	if static.comment("allowed") != "" || len(static.greeting) != 2 || static.greeting[0] != ": connected" {
		t.Errorf("greeting of a static token's listener: %q, want no grant", static.greeting)
	}
	viaCookie := a.listen(t, "topic=video", cookie("static-listen"))
	signed := a.listen(t, "", bearer(hs256(t, grantClaims("signed", time.Hour, nil, []string{"player.*"}))))
	if got := signed.comment("allowed "); !strings.HasPrefix(got, "allowed player.*; expires ") {
		t.Errorf("greeting of a signed token's listener: %q", signed.greeting)
	}

	a.mustPublish(t, "video", `{"n":1}`, bearer("static-publish-2"))
	producer := bearer(hs256(t, grantClaims("producer", time.Hour, []string{"player.>"}, nil)))
	a.mustPublish(t, "player.1", `{"n":2}`, producer)
	checkRefused(t, "a signed token, topic not granted", a.publish(t, "video", `{"n":3}`, producer),
		http.StatusForbidden, `the token does not allow publishing on "video"`, insufficientScope)
	checkRefused(t, "a wrong static token", a.publish(t, "video", `{"n":4}`, bearer("static-publish-3")),
		http.StatusUnauthorized, "invalid token: jwtauth: malformed token", invalidToken("jwtauth: malformed token"))
	checkRefused(t, "the listen token on POST", a.publish(t, "video", `{"n":5}`, bearer("static-listen")),
		http.StatusUnauthorized, "invalid token: jwtauth: malformed token", invalidToken("jwtauth: malformed token"))
	checkRefused(t, "a publish token on GET", a.do(t, http.MethodGet, "/events", "", bearer("static-publish-1")),
		http.StatusUnauthorized, "invalid token: jwtauth: malformed token", invalidToken("jwtauth: malformed token"))
	a.mustPublish(t, "player.2", `{"n":6}`, bearer("static-publish-1"))

	static.expect(t, "static listener", `video {"n":1}`, `player.1 {"n":2}`, `player.2 {"n":6}`)
	viaCookie.expect(t, "static listener by cookie", `video {"n":1}`)
	signed.expect(t, "signed listener", `player.1 {"n":2}`, `player.2 {"n":6}`)
}

// TestJWTNoQueryToken: with -no-query-token, a token in the query is
// ignored (401, as without a token), while the cookie and the bearer token
// work; without it, the query token works (TestJWTListenPerTopicAndPattern).
func TestJWTNoQueryToken(t *testing.T) {
	t.Parallel()
	a := startAuthApp(t, "-jwt-secret", jwtSecret, "-no-query-token", "-listen-token", "static-listen")
	tok := hs256(t, grantClaims("no-query", time.Hour, []string{"q"}, []string{"q"}))
	for _, bad := range []string{tok, "static-listen"} {
		r := a.do(t, http.MethodGet, "/events", "", inQuery(bad))
		checkRefused(t, "a token in the query", r, http.StatusUnauthorized, "missing or invalid listen token", realm)
		checkNoTokenIn(t, r, bad)
	}
	byCookie := a.listen(t, "", cookie(tok))
	byBearer := a.listen(t, "topic=q", bearer(tok))
	// The query is ignored, not an error, when another place holds a token.
	both := a.listen(t, "token=whatever", cookie(tok))
	a.mustPublish(t, "q", `{"n":1}`, bearer(tok))
	for name, l := range map[string]*sse{"cookie": byCookie, "bearer": byBearer, "cookie and query": both} {
		l.expect(t, name, `q {"n":1}`)
	}
}
