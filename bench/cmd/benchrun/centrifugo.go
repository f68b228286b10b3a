package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/bench/internal/load"
)

// The Centrifugo the bench compares with: installed with go install into
// -tools, only when it is a target.
const (
	centrifugoModule  = "github.com/centrifugal/centrifugo/v6"
	centrifugoVersion = "v6.9.1"
	centrifugoChannel = "bench"
	// centrifugoConfigFile is written into the results directory.
	centrifugoConfigFile = "centrifugo.json"
)

// centrifugoConfig is the configuration file benchrun writes: loopback
// only, the unidirectional SSE transport and the health endpoint on, no
// usage statistics sent anywhere, warnings only. Everything else keeps
// Centrifugo's defaults. The API key and the token secret are not in the
// file: they are random for each run and given in the environment.
const centrifugoConfig = `{
  "http_server": {"address": "127.0.0.1"},
  "log": {"level": "warn"},
  "usage_stats": {"disabled": true},
  "health": {"enabled": true},
  "uni_sse": {"enabled": true}
}
`

// centrifugo is the set-up of the centrifugo target.
type centrifugo struct {
	config string // path of the configuration file
	apiKey string // HTTP API key
	secret string // HMAC secret of connection tokens
	token  string // connection JWT subscribing a listener to the channel
}

// env is the environment of the Centrifugo process.
func (c *centrifugo) env() []string {
	return []string{"CENTRIFUGO_HTTP_API_KEY=" + c.apiKey, "CENTRIFUGO_CLIENT_TOKEN_HMAC_SECRET_KEY=" + c.secret}
}

// loadFlags are the sseload flags that speak to it.
func (c *centrifugo) loadFlags() []string {
	return []string{"-protocol", load.ProtocolCentrifugo, "-channel", centrifugoChannel, "-api-key", c.apiKey, "-token", c.token}
}

// setupCentrifugo installs Centrifugo when it is not there yet (unless
// -no-build), writes its configuration and makes the run's secrets.
func setupCentrifugo(ctx context.Context, o *options) (*centrifugo, error) {
	bin := filepath.Join(o.toolsDir, "centrifugo")
	if v := installedVersion(ctx, bin); v != centrifugoVersion {
		if o.noBuild {
			return nil, fmt.Errorf("target centrifugo: %s is not Centrifugo %s (found %q) and -no-build forbids installing it", bin, centrifugoVersion, v)
		}
		if err := installCentrifugo(ctx, o.toolsDir); err != nil {
			return nil, err
		}
		if v := installedVersion(ctx, bin); v != centrifugoVersion {
			return nil, fmt.Errorf("target centrifugo: after go install, %s reports version %q", bin, v)
		}
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return nil, err
	}
	c := &centrifugo{config: filepath.Join(o.out, centrifugoConfigFile), apiKey: randomHex(), secret: randomHex()}
	c.token = load.CentrifugoToken(c.secret, "sseload", centrifugoChannel)
	if err := os.WriteFile(c.config, []byte(centrifugoConfig), 0o644); err != nil {
		return nil, err
	}
	return c, nil
}

// installedVersion returns the module version bin was built from (from
// its build information), or "" when it is not a Centrifugo binary.
func installedVersion(ctx context.Context, bin string) string {
	if _, err := os.Stat(bin); err != nil {
		return ""
	}
	out, err := exec.CommandContext(ctx, "go", "version", "-m", bin).Output()
	if err != nil {
		return ""
	}
	return moduleVersion(out, centrifugoModule)
}

// moduleVersion finds the main module's version in go version -m output:
// a line "\tmod\t<module>\t<version>\t…".
func moduleVersion(out []byte, module string) string {
	for line := range bytes.Lines(out) {
		f := bytes.Fields(line)
		if len(f) >= 3 && string(f[0]) == "mod" && string(f[1]) == module {
			return string(f[2])
		}
	}
	return ""
}

var errInstall = errors.New("target centrifugo: go install failed")

// installTimeout bounds go install (downloading and compiling Centrifugo
// takes about two minutes on the 2-core machine).
const installTimeout = 15 * time.Minute

// installCentrifugo runs go install into dir (made absolute: GOBIN must
// be).
func installCentrifugo(ctx context.Context, dir string) error {
	ctx, cancel := context.WithTimeout(ctx, installTimeout)
	defer cancel()
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	pkg := centrifugoModule + "@" + centrifugoVersion
	fmt.Fprintf(os.Stderr, "benchrun: GOBIN=%s go install %s (a few minutes, once)\n", abs, pkg)
	cmd := exec.CommandContext(ctx, "go", "install", pkg)
	cmd.Env = append(os.Environ(), "GOBIN="+abs)
	cmd.Stdout = os.Stderr
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%w: %s: %w", errInstall, pkg, err)
	}
	return nil
}

func randomHex() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}
