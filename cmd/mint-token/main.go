// Command mint-token prints a signed JSON Web Token that grants topics, as
// the dispatcher verifies them (-jwt-secret, -jwt-public-key). It stands in
// for the service that issues tokens to users in production: to try signed
// tokens, and in scripts and tests.
//
//	go run ./cmd/mint-token -sub player-42 -publish 'player.42.>' -subscribe 'player.*' -ttl 1h
//
// signs with HS256 and the secret in DISPATCHER_JWT_SECRET (the variable the
// dispatcher reads for -jwt-secret; -secret gives it on the command line, where
// other users of the machine may see it); -key signs with a PEM private key
// instead: RSA (RS256), ECDSA (ES256, ES384 or ES512, by curve) or Ed25519
// (EdDSA). -publish and -subscribe take topic patterns, comma-separated or
// repeated. The token is printed on one line, with the claims
//
//	{"sub": "player-42", "iat": <now>, "exp": <now + ttl>,
//	 "pillarbox": {"publish": ["player.42.>"], "subscribe": ["player.*"]}}
//
// and "iss", "aud" and the header's "kid" when -iss, -aud and -kid are given.
package main

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/jwtauth"
	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/topic"
)

// secretVar is the environment variable of the HMAC secret: the
// dispatcher's own for -jwt-secret.
const secretVar = "DISPATCHER_JWT_SECRET" //nolint:gosec // the variable's name, not a credential

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr, time.Now))
}

// patterns is a flag of topic patterns, comma-separated or repeated.
type patterns []string

func (p *patterns) String() string { return strings.Join(*p, ",") }

func (p *patterns) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); !topic.ValidPattern(s) {
			return fmt.Errorf("%q is not a topic pattern (segments of A-Z a-z 0-9 _ - separated by dots, * for one segment, a last > for the rest)", s)
		}
		*p = append(*p, s)
	}
	return nil
}

// run is the command: it returns the exit status (0, 1 for an error, 2 for
// bad usage), writes the token to stdout and errors to stderr. Nothing it
// writes holds the secret or the private key.
func run(args []string, getenv func(string) string, stdout, stderr io.Writer, now func() time.Time) int {
	fs := flag.NewFlagSet("mint-token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		publish, subscribe   patterns
		secret, keyFile, sub string
		iss, aud, kid        string
		ttl                  time.Duration
	)
	fs.StringVar(&secret, "secret", "", "HMAC secret that signs the token (HS256), at least 32 bytes (default: $"+secretVar+")")
	fs.StringVar(&keyFile, "key", "", "PEM `file` of a private key that signs the token instead: RSA (RS256), ECDSA (ES256/384/512) or Ed25519 (EdDSA)")
	fs.StringVar(&sub, "sub", "", "the token's subject: whom it is issued to (required)")
	fs.Var(&publish, "publish", "topic `patterns` the token may publish on, comma-separated or repeated")
	fs.Var(&subscribe, "subscribe", "topic `patterns` the token may listen to, comma-separated or repeated")
	fs.DurationVar(&ttl, "ttl", time.Hour, "how long the token is valid")
	fs.StringVar(&iss, "iss", "", "the token's issuer (for -jwt-issuer)")
	fs.StringVar(&aud, "aud", "", "the token's audience (for -jwt-audience)")
	fs.StringVar(&kid, "kid", "", "the key id in the token's header (for a key of a JWKS)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: mint-token -sub SUBJECT [-publish PATTERNS] [-subscribe PATTERNS] [-ttl 1h] [-key FILE]\n\n"+
			"Prints a JSON Web Token that grants topics, signed with $%s (HS256) or the private key of -key.\n\nFlags:\n", secretVar)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if secret == "" && keyFile == "" {
		secret = getenv(secretVar)
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "mint-token: "+format+"\n", a...)
		return 2
	}
	switch {
	case fs.NArg() > 0:
		return usage("unexpected argument %q", fs.Arg(0))
	case sub == "":
		return usage("-sub is required: whom the token is issued to")
	case ttl <= 0:
		return usage("-ttl must be positive, got %v", ttl)
	case secret != "" && keyFile != "":
		return usage("give -secret (or %s) or -key, not both", secretVar)
	case secret == "" && keyFile == "":
		return usage("no key: set %s, or give -secret or -key", secretVar)
	case keyFile == "" && len(secret) < jwtauth.MinSecretLen:
		return usage("the secret is %d bytes: the dispatcher wants at least %d", len(secret), jwtauth.MinSecretLen)
	}
	var (
		method jwt.SigningMethod = jwt.SigningMethodHS256
		key    any               = []byte(secret)
	)
	if keyFile != "" {
		var err error
		if method, key, err = readKey(keyFile); err != nil {
			fmt.Fprintf(stderr, "mint-token: -key %s: %v\n", keyFile, err)
			return 1
		}
	}
	t := now()
	grant := map[string]any{}
	if len(publish) > 0 {
		grant["publish"] = publish
	}
	if len(subscribe) > 0 {
		grant["subscribe"] = subscribe
	}
	claims := jwt.MapClaims{"sub": sub, "iat": t.Unix(), "exp": t.Add(ttl).Unix(), "pillarbox": grant}
	if iss != "" {
		claims["iss"] = iss
	}
	if aud != "" {
		claims["aud"] = aud
	}
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		fmt.Fprintf(stderr, "mint-token: signing with %s: %v\n", method.Alg(), err)
		return 1
	}
	fmt.Fprintln(stdout, s)
	return 0
}

// readKey reads the one private key of a PEM file ("PRIVATE KEY", "RSA
// PRIVATE KEY" or "EC PRIVATE KEY") and returns the algorithm it signs
// with. Its errors never quote the file.
func readKey(path string) (jwt.SigningMethod, any, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	var block *pem.Block
	for {
		block, data = pem.Decode(data)
		if block == nil {
			return nil, nil, errors.New("no private key found: want a PEM PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block")
		}
		if strings.HasSuffix(block.Type, "PRIVATE KEY") {
			break
		}
		// Others ("EC PARAMETERS" before an EC key) are skipped.
	}
	var key any
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, nil, fmt.Errorf("a %s block is not supported (encrypted keys are not)", block.Type)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s block: %w", block.Type, err)
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		return jwt.SigningMethodRS256, k, nil
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P256():
			return jwt.SigningMethodES256, k, nil
		case elliptic.P384():
			return jwt.SigningMethodES384, k, nil
		case elliptic.P521():
			return jwt.SigningMethodES512, k, nil
		}
		return nil, nil, errors.New("an ECDSA key on a curve the dispatcher does not verify: want P-256, P-384 or P-521")
	case ed25519.PrivateKey:
		return jwt.SigningMethodEdDSA, k, nil
	}
	return nil, nil, fmt.Errorf("a %T key is not supported", key)
}
