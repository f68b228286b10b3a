package app

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/auth"
	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/clientip"
	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/jwtauth"
	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/natsbridge"
	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/fanout"
	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/server"
)

// envPrefix is the prefix of the environment variables that stand in for
// flags: -max-body falls back to DISPATCHER_MAX_BODY.
const envPrefix = "DISPATCHER_"

// ErrUsage is wrapped by errors caused by bad flags or environment values.
var ErrUsage = errors.New("usage")

// settings is everything the command line configures.
type settings struct {
	server       server.Config
	jwt          jwtauth.Config // signed tokens, when a key source is set
	jwtKeyFile   string         // -jwt-public-key: the PEM file jwt.PublicKeyPEM is read from
	pprofAddr    string
	nats         natsbridge.Config // used when nats.URLs is set
	logFormat    string
	maxListeners string // "auto" or a number
	buffer       int
	maxTopics    int
	maxFilters   int
	// healthcheck is the URL -healthcheck checks; set, Run checks it and
	// does nothing else.
	healthcheck string
	// fromEnv maps the name of each flag set from its environment variable
	// to that variable, so that an error names what the operator wrote.
	fromEnv map[string]string
	// flags are the flags parsed, to tell a setting's name from another word.
	flags           *flag.FlagSet
	natsOnly        string // a -nats-* setting other than -nats-url that was given
	shutdownTimeout time.Duration
	logLevel        slog.Level
	version         bool
	pprofRemote     bool
}

// envName returns the environment variable for a flag name.
func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseSettings reads flags from args, then, for each flag not given, its
// environment variable. It validates the result. On -help it writes the usage
// to out and returns flag.ErrHelp.
func parseSettings(args []string, getenv func(string) string, out io.Writer) (settings, error) {
	st := settings{
		server:          server.DefaultConfig(),
		logFormat:       "text",
		maxListeners:    "auto",
		buffer:          fanout.DefaultSize,
		maxTopics:       fanout.DefaultMaxTopics,
		maxFilters:      fanout.DefaultMaxFilters,
		shutdownTimeout: 10 * time.Second,
	}
	c := &st.server
	fs := flag.NewFlagSet("event_dispatcher", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported in one line by the caller
	st.flags = fs

	fs.Func("port", "listen `address`: :8080, 8080 or host:port (default :8080)", func(v string) (err error) {
		c.Addr, err = parseAddr(v)
		return err
	})
	fs.Func("max-body", "largest event body, in bytes or with a KiB/MiB suffix (default 64KiB)", func(v string) (err error) {
		c.MaxBody, err = parseSize(v)
		return err
	})
	fs.Func("max-batch", "largest NDJSON batch body, in bytes or with a KiB/MiB suffix (default 1MiB)", func(v string) (err error) {
		c.MaxBatch, err = parseSize(v)
		return err
	})
	fs.Func("max-header-bytes", "largest request head, in bytes or with a KiB/MiB suffix; 431 past it (default 16KiB)", func(v string) (err error) {
		c.MaxHeaderBytes, err = parseSize(v)
		return err
	})
	fs.DurationVar(&c.Heartbeat, "heartbeat", c.Heartbeat, "idle interval after which a stream gets a comment line")
	fs.IntVar(&st.buffer, "buffer", st.buffer, "events held for listeners that fall behind or resume (rounded up to a power of two)")
	fs.StringVar(&st.maxListeners, "max-listeners", st.maxListeners,
		"concurrent listeners allowed: auto (what the descriptor limit allows) or a number (capped to that)")
	fs.IntVar(&c.MaxListenersPerIP, "max-listeners-per-ip", c.MaxListenersPerIP, "concurrent listeners allowed per client address (0: no limit)")
	fs.IntVar(&st.maxTopics, "max-topics", st.maxTopics,
		"topics alive at once, the default one aside (a full table releases a topic without listeners for a new one)")
	fs.IntVar(&c.MaxListenerTopics, "max-topics-per-listener", c.MaxListenerTopics, "topics one listener may ask for")
	fs.IntVar(&st.maxFilters, "max-filters", st.maxFilters,
		"distinct listener filters (where/sample over distinct topics) alive at once; a listener with a new one past it is turned away")
	fs.StringVar(&c.TopicField, "topic-field", c.TopicField,
		"top-level string field naming the topic of an event posted without a topic parameter (empty: none; the default topic when absent or invalid)")
	fs.Func("max-batch-events", "most events in one NDJSON batch: auto (a quarter of -buffer) or a number (default auto)", func(v string) error {
		if v == "auto" {
			c.MaxBatchEvents = 0
			return nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fmt.Errorf("want auto or a positive number, got %q", v)
		}
		c.MaxBatchEvents = n
		return nil
	})
	fs.Func("send-buffer", "kernel send buffer of each listener's connection, in bytes or with a KiB/MiB suffix: "+
		"what a listener that stops reading holds until it is cut (0: the kernel's sizing) (default 64KiB)", func(v string) (err error) {
		c.SendBuffer, err = parseSize(v)
		return err
	})
	fs.BoolVar(&c.Replay, "replay", c.Replay, "resume listeners after their Last-Event-ID (false: the original's behaviour)")
	fs.DurationVar(&c.MaxStreamAge, "max-stream-age", c.MaxStreamAge,
		"end streams cleanly after 80-100% of this age, to spread listeners over instances (0: never)")
	fs.Func("streamer", "how streams are written: writer (fasthttp's stream writer) or hijack (leaner, for very many listeners) (default writer)",
		func(v string) error {
			c.Streamer = server.Streamer(v)
			return nil
		})
	fs.Func("cors-origins", "comma-separated origins allowed from browsers, or * for any (default *)", func(v string) error {
		c.CORSOrigins = splitList(v)
		return nil
	})
	fs.StringVar(&c.IPField, "ip-field", c.IPField, "field that receives the producer's IP address (empty: none)")
	fs.Func("trusted-proxies", "comma-separated CIDRs or addresses of the proxies whose X-Forwarded-For is believed, or none (default loopback)", func(v string) (err error) {
		c.TrustedProxies, err = clientip.ParseProxies(v)
		return err
	})
	fs.Func("publish-token", "comma-separated bearer tokens accepted to POST events (several for rotation; empty: none)", func(v string) error {
		c.PublishTokens = strings.Split(v, ",") // checked in validate, never echoed
		return nil
	})
	fs.Func("listen-token", "comma-separated tokens accepted to listen, as a bearer token, a token query parameter or a dispatcher_token cookie (empty: none)",
		func(v string) error {
			c.ListenTokens = strings.Split(v, ",") // checked in validate, never echoed
			return nil
		})
	fs.BoolVar(&c.NoQueryToken, "no-query-token", c.NoQueryToken,
		"refuse listen tokens in the token query parameter (secrets in URLs end up in logs): bearer and cookie only")
	fs.Func("jwt-secret", "HMAC secret (at least 32 bytes) that signs JSON Web Tokens granting topics (HS256/384/512)", func(v string) error {
		st.jwt.Secret = []byte(v) // checked in validate, never echoed
		return nil
	})
	fs.StringVar(&st.jwtKeyFile, "jwt-public-key", "", "PEM `file` of the public key that signs JSON Web Tokens (RSA, ECDSA or Ed25519)")
	fs.StringVar(&st.jwt.JWKSURL, "jwt-jwks-url", "", "JWKS endpoint whose keys sign JSON Web Tokens, refreshed periodically and for unknown key ids")
	fs.StringVar(&st.jwt.Issuer, "jwt-issuer", "", "the iss a JSON Web Token must carry (empty: not checked)")
	fs.StringVar(&st.jwt.Audience, "jwt-audience", "", "an aud a JSON Web Token must carry (empty: not checked)")
	fs.DurationVar(&st.jwt.Leeway, "jwt-leeway", jwtauth.DefaultLeeway, "clock skew allowed for a JSON Web Token's exp and nbf (at most 5s)")
	fs.IntVar(&c.MaxListenersPerSubject, "max-listeners-per-subject", c.MaxListenersPerSubject,
		"concurrent listeners per JSON Web Token subject (sub) (0: no limit)")
	fs.DurationVar(&c.WriteTimeout, "write-timeout", c.WriteTimeout, "a listener that stops reading is cut after this long")
	fs.DurationVar(&c.HeaderTimeout, "header-timeout", c.HeaderTimeout, "how long a client may take to send a request (head and body); streams are not affected")
	fs.Func("lag-policy", "what to do with a listener that fell behind the buffer: continue or cut (default continue)", func(v string) error {
		c.LagPolicy = server.LagPolicy(v)
		return nil
	})
	fs.DurationVar(&c.Linger, "linger", c.Linger, "the longest a busy stream gathers events before writing them (0: always write at once)")
	fs.Func("write-budget", "how long busy streams gather events before writing them (up to -linger): auto "+
		"(as the machine's spare CPU allows), a number of write calls per second for all streams, or 0 (never: always write at once) (default auto)",
		func(v string) error {
			if v == "auto" {
				c.WriteBudget = server.AutoWriteBudget
				return nil
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return fmt.Errorf("want auto, 0 or a positive number, got %q", v)
			}
			c.WriteBudget = n
			return nil
		})
	fs.DurationVar(&c.Retry, "retry", c.Retry, "reconnection delay suggested to listeners (plus up to 100% jitter)")
	fs.DurationVar(&st.shutdownTimeout, "shutdown-timeout", st.shutdownTimeout,
		"how long a graceful shutdown may take at most (it usually takes about a second)")
	fs.BoolVar(&c.Viewer, "viewer", c.Viewer, "serve the live viewer page on GET /")
	fs.Func("log-level", "debug, info, warn or error (default info)", func(v string) error {
		return st.logLevel.UnmarshalText([]byte(v))
	})
	fs.Func("log-format", "text or json (default text)", func(v string) error {
		if v != "text" && v != "json" {
			return fmt.Errorf("want text or json")
		}
		st.logFormat = v
		return nil
	})
	fs.StringVar(&st.pprofAddr, "pprof-addr", "", "serve net/http/pprof on this address, a loopback one (empty: off)")
	fs.BoolVar(&st.pprofRemote, "pprof-allow-remote", false, "allow -pprof-addr to be reachable from other hosts")
	n := &st.nats
	fs.StringVar(&n.URLs, "nats-url", "", "NATS server URLs, comma-separated, to share events with other instances through JetStream (empty: this instance alone)")
	fs.StringVar(&n.CredsFile, "nats-creds", "", "NATS credentials file")
	fs.StringVar(&n.TLSCA, "nats-tls-ca", "", "CA certificate file to verify the NATS servers")
	fs.StringVar(&n.TLSCert, "nats-tls-cert", "", "client certificate file for NATS (with -nats-tls-key)")
	fs.StringVar(&n.TLSKey, "nats-tls-key", "", "client key file for NATS")
	fs.StringVar(&n.Stream, "nats-stream", natsbridge.DefaultStream, "JetStream stream shared by the instances")
	fs.StringVar(&n.Subject, "nats-subject", natsbridge.DefaultSubject, "subject prefix: topic t is published on <prefix>.t")
	fs.DurationVar(&n.MaxAge, "nats-max-age", natsbridge.DefaultMaxAge, "how long the stream keeps events (how far back a listener can resume)")
	fs.Func("nats-storage", "stream storage: memory or file (default memory)", func(v string) error {
		n.Storage = natsbridge.Storage(v)
		return nil
	})
	fs.IntVar(&n.Replicas, "nats-replicas", natsbridge.DefaultReplicas, "stream replicas in a NATS cluster (1, 3 or 5)")
	fs.BoolVar(&st.version, "version", false, "print the version and exit")
	fs.Func("healthcheck", "check the service at this `URL` (e.g. http://127.0.0.1:8080/health/ready) and exit: 0 on a 2xx answer within 3s, 1 otherwise; "+
		"serves nothing and ignores the other settings (for container health checks without a shell or curl)", func(v string) error {
		if _, err := parseHealthcheckURL(v); err != nil {
			return err
		}
		st.healthcheck = v
		return nil
	})

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(fs, out)
			return st, err
		}
		return st, fmt.Errorf("%w: %w", ErrUsage, err)
	}
	if fs.NArg() > 0 {
		return st, fmt.Errorf("%w: unexpected argument %q", ErrUsage, fs.Arg(0))
	}
	if healthcheckMode(fs) {
		// The health check reads nothing else: a container's probe runs
		// with the container's environment but without the flags the
		// service was started with, so the rest could be contradictory.
		return st, nil
	}
	var err error
	if st.fromEnv, err = applyEnv(fs, getenv); err != nil {
		return st, err
	}
	st.natsOnly = natsSettingGiven(fs, getenv)
	if err = st.validate(); err != nil {
		err = st.usageError(err)
		return st, err
	}
	return st, nil
}

// healthcheckMode reports whether a health check was asked for, by
// -healthcheck. Like -version, it has no environment variable: it is a mode,
// not a setting, and a DISPATCHER_HEALTHCHECK in a container's environment
// would turn the service itself into a one-shot check.
func healthcheckMode(fs *flag.FlagSet) bool {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == "healthcheck" })
	return given
}

// settingNames maps the names validation errors use (the server's and the
// NATS bridge's configuration fields) to the flags that set them.
var settingNames = map[string]string{ //nolint:gosec // names of settings, not credentials
	"addr":           "port",
	"URLs":           "nats-url",
	"CredsFile":      "nats-creds",
	"TLSCA":          "nats-tls-ca",
	"TLSCert":        "nats-tls-cert",
	"TLSKey":         "nats-tls-key",
	"TLSCert/TLSKey": "nats-tls-cert",
	"Stream":         "nats-stream",
	"Subject":        "nats-subject",
	"MaxAge":         "nats-max-age",
	"Storage":        "nats-storage",
	"Replicas":       "nats-replicas",
}

// usageError turns an error of validation, "[sentinel: ]setting: why",
// into a usage error that names the setting as the operator gave it: the
// environment variable when it came from one (DISPATCHER_LAG_POLICY: ...),
// the flag otherwise (-lag-policy: ...). It wraps ErrUsage and err.
func (st *settings) usageError(err error) error {
	msg := err.Error()
	for _, sentinel := range []error{server.ErrInvalidConfig, natsbridge.ErrInvalidConfig} {
		if errors.Is(err, sentinel) {
			msg = strings.TrimPrefix(msg, sentinel.Error()+": ")
		}
	}
	setting, why, ok := strings.Cut(msg, ": ")
	if !ok {
		return fmt.Errorf("%w: %w", ErrUsage, err)
	}
	if flagName, ok := settingNames[setting]; ok {
		setting = flagName
	}
	if st.flags == nil || st.flags.Lookup(setting) == nil {
		return fmt.Errorf("%w: %w", ErrUsage, err)
	}
	name := "-" + setting
	if env, ok := st.fromEnv[setting]; ok {
		name = env
	}
	return &usageError{msg: name + ": " + why, err: err}
}

// usageError is a bad setting, named as the operator gave it.
type usageError struct {
	err error
	msg string
}

func (e *usageError) Error() string   { return ErrUsage.Error() + ": " + e.msg }
func (e *usageError) Unwrap() []error { return []error{ErrUsage, e.err} }

// validate checks the settings that are not the server's, reconciles the
// ones that depend on each other, then checks the server's.
func (st *settings) validate() error {
	switch {
	case st.buffer < 1 || st.buffer > 1<<24:
		return fmt.Errorf("buffer: must be between 1 and %d, got %d", 1<<24, st.buffer)
	case st.maxTopics < 1:
		return fmt.Errorf("max-topics: must be at least 1, got %d", st.maxTopics)
	case st.maxFilters < 1:
		return fmt.Errorf("max-filters: must be at least 1, got %d", st.maxFilters)
	case st.shutdownTimeout < 100*time.Millisecond:
		return fmt.Errorf("shutdown-timeout: must be at least 100ms, got %v", st.shutdownTimeout)
	}
	if st.maxListeners != "auto" {
		n, err := strconv.Atoi(st.maxListeners)
		if err != nil || n < 1 {
			return fmt.Errorf("max-listeners: want auto or a positive number, got %q", st.maxListeners)
		}
		st.server.MaxListeners = n
	}
	for _, tokens := range []struct {
		setting string
		list    []string
	}{{"publish-token", st.server.PublishTokens}, {"listen-token", st.server.ListenTokens}} {
		if _, err := auth.ParseTokens(strings.Join(tokens.list, ",")); err != nil {
			return fmt.Errorf("%s: %w", tokens.setting, err)
		}
	}
	if st.pprofAddr != "" {
		if err := checkPprofAddr(st.pprofAddr, st.pprofRemote); err != nil {
			return err
		}
	}
	if err := st.loadJWT(); err != nil {
		return err
	}
	if st.server.MaxBatchEvents > st.buffer {
		return fmt.Errorf("max-batch-events: %d is more than -buffer (%d): listeners would miss most of such a batch",
			st.server.MaxBatchEvents, st.buffer)
	}
	if st.server.MaxBatch < st.server.MaxBody {
		return fmt.Errorf("max-batch: %d bytes is less than max-body (%d): a batch could not hold one event", st.server.MaxBatch, st.server.MaxBody)
	}
	if st.nats.URLs != "" {
		if st.nats.Storage == "" {
			st.nats.Storage = natsbridge.DefaultStorage
		}
		if err := st.nats.Validate(); err != nil {
			return err
		}
	} else if st.natsOnly != "" {
		return fmt.Errorf("%s: needs a NATS URL (-nats-url or DISPATCHER_NATS_URL)", st.natsOnly)
	}
	// The drain grace takes at most a third of the shutdown timeout (see
	// server.Shutdown); nothing else to reconcile: a stuck listener is cut
	// at the end of the grace, whatever the write timeout.
	return st.server.Validate()
}

// applyEnv sets every flag not given on the command line from its
// environment variable, if that is set. It returns the variables it used,
// by flag name; an error names the variable.
func applyEnv(fs *flag.FlagSet, getenv func(string) string) (map[string]string, error) {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	used := map[string]string{}
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || given[f.Name] || f.Name == "version" || f.Name == "healthcheck" {
			return
		}
		name := envName(f.Name)
		if v := getenv(name); v != "" {
			if e := f.Value.Set(v); e != nil {
				err = fmt.Errorf("%w: %s: invalid value %q: %w", ErrUsage, name, v, e)
				return
			}
			used[f.Name] = name
		}
	})
	return used, err
}

func printUsage(fs *flag.FlagSet, out io.Writer) {
	fmt.Fprintf(out, "Usage: event_dispatcher [flags]\n\n"+
		"Receives JSON events on POST /api/events and broadcasts them as Server-Sent Events on GET /events.\n"+
		"Every flag falls back to an environment variable: -max-body to %sMAX_BODY, and so on.\n\nFlags:\n", envPrefix)
	fs.SetOutput(out)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// parseAddr accepts the original service's forms of -port: ":8080", "8080"
// and "host:port".
func parseAddr(v string) (string, error) {
	if v == "" {
		return "", errors.New("empty")
	}
	if !strings.Contains(v, ":") {
		v = ":" + v
	}
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return "", err
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return "", fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	return net.JoinHostPort(host, port), nil
}

// parseSize parses a byte count: 65536, 64KiB, 1MiB (KB, MB, K, M are taken
// as the binary units too; case does not matter).
func parseSize(v string) (int, error) {
	s := strings.TrimSpace(strings.ToLower(v))
	mult := 1
	for _, u := range []struct {
		suffix string
		mult   int
	}{{"kib", 1 << 10}, {"mib", 1 << 20}, {"kb", 1 << 10}, {"mb", 1 << 20}, {"k", 1 << 10}, {"m", 1 << 20}, {"b", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size (try 65536, 64KiB or 1MiB)", v)
	}
	if n > (1<<31)/mult {
		return 0, fmt.Errorf("%q is too large", v)
	}
	return n * mult, nil
}

func splitList(v string) []string {
	var out []string
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// natsSettingGiven returns the name of a -nats-* setting other than
// -nats-url given by flag or environment, or "".
func natsSettingGiven(fs *flag.FlagSet, getenv func(string) string) string {
	given := ""
	fs.Visit(func(f *flag.Flag) {
		if given == "" && strings.HasPrefix(f.Name, "nats-") && f.Name != "nats-url" {
			given = f.Name
		}
	})
	fs.VisitAll(func(f *flag.Flag) {
		if given == "" && strings.HasPrefix(f.Name, "nats-") && f.Name != "nats-url" && getenv(envName(f.Name)) != "" {
			given = f.Name
		}
	})
	return given
}

// CheckSettings parses and validates args and the environment (getenv) as
// Run does, and starts nothing: it returns nil when Run would accept them,
// and the error Run would return (wrapping ErrUsage) otherwise. With
// -healthcheck it checks only the URL, as Run reads nothing else then. It
// is for the checks of deployment files (compose, Kubernetes manifests),
// which pass flags and DISPATCHER_* variables to the binary.
func CheckSettings(args []string, getenv func(string) string) error {
	_, err := parseSettings(args, getenv, io.Discard)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}

// loadJWT reads the -jwt-public-key file and checks the JSON Web Token
// settings: at most one key source, and none of the others without one.
func (st *settings) loadJWT() error {
	if st.jwtKeyFile != "" {
		b, err := os.ReadFile(st.jwtKeyFile)
		if err != nil {
			return fmt.Errorf("jwt-public-key: %w", err)
		}
		st.jwt.PublicKeyPEM = b
	}
	if !st.jwt.Enabled() {
		switch {
		case st.jwt.Issuer != "":
			return errors.New("jwt-issuer: set without a key (-jwt-secret, -jwt-public-key or -jwt-jwks-url)")
		case st.jwt.Audience != "":
			return errors.New("jwt-audience: set without a key (-jwt-secret, -jwt-public-key or -jwt-jwks-url)")
		case st.server.MaxListenersPerSubject > 0:
			return errors.New("max-listeners-per-subject: set without a key for JSON Web Tokens")
		}
		return nil
	}
	return st.jwt.Validate()
}
