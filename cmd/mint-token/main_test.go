package main

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/jwtauth"
)

const secret = "mint-token-test-secret-012345678"

var t0 = time.Date(2030, time.January, 1, 12, 0, 0, 0, time.UTC)

// mint runs the command with args and the environment env at t0, and
// returns its exit status, output and errors.
func mint(env map[string]string, args ...string) (status int, out, errs string) {
	var o, e bytes.Buffer
	status = run(args, func(k string) string { return env[k] }, &o, &e, func() time.Time { return t0 })
	return status, o.String(), e.String()
}

// verify checks the token with the dispatcher's verifier for cfg, at t0 plus
// a minute, and returns its grant.
func verify(t *testing.T, cfg jwtauth.Config, out string) *jwtauth.Grant {
	t.Helper()
	cfg.Now = func() time.Time { return t0.Add(time.Minute) }
	v, err := jwtauth.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	tok, ok := strings.CutSuffix(out, "\n")
	if !ok || strings.Contains(tok, "\n") {
		t.Fatalf("output %q: want the token on one line", out)
	}
	g, err := v.Verify(tok)
	if err != nil {
		t.Fatalf("the dispatcher refuses the token: %v", err)
	}
	return g
}

// TestMintWithTheSecret: the token minted with the secret (from the
// environment, as the dispatcher reads it, or -secret) is one the
// dispatcher accepts, with the subject, patterns, expiry, issuer and
// audience asked for.
func TestMintWithTheSecret(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		env  map[string]string
		args []string
	}{
		"environment": {env: map[string]string{"DISPATCHER_JWT_SECRET": secret}},
		"flag":        {args: []string{"-secret", secret}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			args := append(slices.Clone(tc.args), "-sub", "player-42", "-publish", "player.42.>", "-subscribe", "player.*,ads",
				"-subscribe", "news", "-ttl", "2h", "-iss", "https://issuer.example", "-aud", "dispatcher")
			status, out, errs := mint(tc.env, args...)
			if status != 0 || errs != "" {
				t.Fatalf("status %d, errors %q", status, errs)
			}
			g := verify(t, jwtauth.Config{Secret: []byte(secret), Issuer: "https://issuer.example", Audience: "dispatcher"}, out)
			if g.Subject != "player-42" || !g.Expires.Equal(t0.Add(2*time.Hour)) {
				t.Errorf("subject %q, expires %v; want player-42, %v", g.Subject, g.Expires, t0.Add(2*time.Hour))
			}
			if got := g.SubscribePatterns(); strings.Join(got, " ") != "player.* ads news" {
				t.Errorf("subscribe patterns %q", got)
			}
			if !g.CanPublish("player.42.start") || g.CanPublish("player.43.start") || !g.CanSubscribe("player.1") || g.CanSubscribe("video") {
				t.Error("the grant is not the one asked for")
			}
		})
	}
}

// TestMintWithAPrivateKey: -key signs with the private key of a PEM file,
// in each of its encodings, with the algorithm of the key; the dispatcher
// accepts the token with the public key (-jwt-public-key), and a -kid
// lands in the header.
func TestMintWithAPrivateKey(t *testing.T) {
	t.Parallel()
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	pkcs8 := func(k any) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	sec1, err := x509.MarshalECPrivateKey(p256)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		key       crypto.Signer
		name, typ string
		der       []byte
	}{
		{name: "RSA, PKCS #1", key: rsaKey, typ: "RSA PRIVATE KEY", der: x509.MarshalPKCS1PrivateKey(rsaKey)},
		{name: "RSA, PKCS #8", key: rsaKey, typ: "PRIVATE KEY", der: pkcs8(rsaKey)},
		{name: "ECDSA P-384, PKCS #8", key: p384, typ: "PRIVATE KEY", der: pkcs8(p384)},
		{name: "ECDSA P-256, SEC 1", key: p256, typ: "EC PRIVATE KEY", der: sec1},
		{name: "Ed25519, PKCS #8", key: ed, typ: "PRIVATE KEY", der: pkcs8(ed)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			file := filepath.Join(t.TempDir(), "key.pem")
			if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: tc.typ, Bytes: tc.der}), 0o600); err != nil {
				t.Fatal(err)
			}
			// The secret in the environment is not used when -key is given.
			status, out, errs := mint(map[string]string{"DISPATCHER_JWT_SECRET": secret},
				"-key", file, "-sub", "s", "-subscribe", ">", "-kid", "key-1")
			if status != 0 || errs != "" {
				t.Fatalf("status %d, errors %q", status, errs)
			}
			pub, err := x509.MarshalPKIXPublicKey(tc.key.Public())
			if err != nil {
				t.Fatal(err)
			}
			g := verify(t, jwtauth.Config{PublicKeyPEM: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})}, out)
			if !g.CanSubscribe("anything") || g.CanPublish("anything") {
				t.Error("the grant is not the one asked for")
			}
			if !strings.HasPrefix(out, "eyJ") || !strings.Contains(decodeHeader(t, out), `"kid":"key-1"`) {
				t.Errorf("header %s: want the key id", decodeHeader(t, out))
			}
		})
	}
}

func decodeHeader(t *testing.T, tok string) string {
	t.Helper()
	h, _, _ := strings.Cut(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestMintWithOpenSSLKeys: the keys of the README's worked example, made
// with openssl, work: the token minted with the private key is accepted
// with the public key. Skipped where openssl is not installed.
func TestMintWithOpenSSLKeys(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("no openssl")
	}
	dir := t.TempDir()
	signing, verifying := filepath.Join(dir, "signing.pem"), filepath.Join(dir, "verify.pem")
	for _, cmd := range [][]string{
		{"openssl", "genpkey", "-algorithm", "ed25519", "-out", signing},
		{"openssl", "pkey", "-in", signing, "-pubout", "-out", verifying},
	} {
		if out, err := exec.Command(cmd[0], cmd[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(cmd, " "), err, out)
		}
	}
	status, out, errs := mint(nil, "-key", signing, "-sub", "s", "-publish", "player.>")
	if status != 0 {
		t.Fatalf("status %d, errors %q", status, errs)
	}
	pub, err := os.ReadFile(verifying)
	if err != nil {
		t.Fatal(err)
	}
	if g := verify(t, jwtauth.Config{PublicKeyPEM: pub}, out); !g.CanPublish("player.1") {
		t.Error("the grant is not the one asked for")
	}
}

// TestMintRefusesBadUsage: every mistake gets an error naming it, exit
// status 2 (1 for a key file that cannot be used), no token, and never the
// secret.
func TestMintRefusesBadUsage(t *testing.T) {
	t.Parallel()
	pubFile := filepath.Join(t.TempDir(), "public.pem")
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	der, err := x509.MarshalPKIXPublicKey(ed.Public())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"DISPATCHER_JWT_SECRET": secret}
	for _, tc := range []struct {
		env    map[string]string
		name   string
		want   string
		args   []string
		status int
	}{
		{name: "no key", args: []string{"-sub", "s"}, status: 2, want: "no key"},
		{name: "a short secret", args: []string{"-sub", "s", "-secret", "short-s3cret"}, status: 2, want: "at least 32"},
		{name: "secret and key", env: env, args: []string{"-sub", "s", "-secret", secret, "-key", pubFile}, status: 2, want: "not both"},
		{name: "no subject", env: env, status: 2, want: "-sub is required"},
		{name: "an invalid pattern", env: env, args: []string{"-sub", "s", "-subscribe", "player,a..b"}, status: 2, want: `"a..b" is not a topic pattern`},
		{name: "a wildcard in the middle", env: env, args: []string{"-sub", "s", "-publish", "a.>.b"}, status: 2, want: `"a.>.b"`},
		{name: "a negative ttl", env: env, args: []string{"-sub", "s", "-ttl", "-1h"}, status: 2, want: "-ttl"},
		{name: "an argument", env: env, args: []string{"-sub", "s", "extra"}, status: 2, want: `"extra"`},
		{name: "a public key", args: []string{"-sub", "s", "-key", pubFile}, status: 1, want: "no private key"},
		{name: "a missing key file", args: []string{"-sub", "s", "-key", pubFile + ".missing"}, status: 1, want: "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			status, out, errs := mint(tc.env, tc.args...)
			if status != tc.status || out != "" || !strings.Contains(errs, tc.want) {
				t.Errorf("status %d, output %q, errors %q; want %d, nothing, an error naming %q", status, out, errs, tc.status, tc.want)
			}
			if strings.Contains(errs, "s3cret") || strings.Contains(errs, secret) {
				t.Errorf("the error %q holds the secret", errs)
			}
		})
	}
}
