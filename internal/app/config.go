package app

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/server"
)

// envPrefix is the prefix of the environment variables that stand in for
// flags: -max-body falls back to DISPATCHER_MAX_BODY.
const envPrefix = "DISPATCHER_"

// ErrUsage is wrapped by errors caused by bad flags or environment values.
var ErrUsage = errors.New("usage")

// settings is everything the command line configures.
type settings struct {
	server    server.Config
	logLevel  slog.Level
	logFormat string
	version   bool
}

// envName returns the environment variable for a flag name.
func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseSettings reads flags from args, then, for each flag not given, its
// environment variable. It validates the result. On -help it writes the usage
// to out and returns flag.ErrHelp.
func parseSettings(args []string, getenv func(string) string, out io.Writer) (settings, error) {
	st := settings{server: server.DefaultConfig(), logFormat: "text"}
	c := &st.server
	fs := flag.NewFlagSet("event_dispatcher", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported in one line by the caller

	fs.Func("port", "listen `address`: :8080, 8080 or host:port (default :8080)", func(v string) (err error) {
		c.Addr, err = parseAddr(v)
		return err
	})
	fs.Func("max-body", "largest event body, in bytes or with a KiB/MiB suffix (default 64KiB)", func(v string) (err error) {
		c.MaxBody, err = parseSize(v)
		return err
	})
	fs.DurationVar(&c.Heartbeat, "heartbeat", c.Heartbeat, "idle interval after which a stream gets a comment line")
	fs.IntVar(&c.Buffer, "buffer", c.Buffer, "events held for listeners that fall behind (rounded up to a power of two)")
	fs.IntVar(&c.MaxListeners, "max-listeners", c.MaxListeners, "concurrent listeners allowed (0: no limit)")
	fs.Func("cors-origins", "comma-separated origins allowed from browsers, or * for any (default *)", func(v string) error {
		c.CORSOrigins = splitList(v)
		return nil
	})
	fs.StringVar(&c.IPField, "ip-field", c.IPField, "field that receives the producer's IP address (empty: none)")
	fs.Func("trusted-proxies", "comma-separated CIDRs whose X-Forwarded-For is believed, or none (default loopback and private ranges)", func(v string) (err error) {
		c.TrustedProxies, err = parsePrefixes(v)
		return err
	})
	fs.StringVar(&c.PublishToken, "publish-token", "", "bearer token required to POST events (empty: none)")
	fs.DurationVar(&c.WriteTimeout, "write-timeout", c.WriteTimeout, "a listener that stops reading is cut after this long")
	fs.Func("lag-policy", "what to do with a listener that fell behind the buffer: continue or cut (default continue)", func(v string) error {
		c.LagPolicy = server.LagPolicy(v)
		return nil
	})
	fs.DurationVar(&c.Linger, "linger", c.Linger, "how long a busy stream gathers events before writing them (0: write at once)")
	fs.DurationVar(&c.Retry, "retry", c.Retry, "reconnection delay suggested to listeners (plus up to 100% jitter)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "how long a graceful shutdown may take")
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
	fs.BoolVar(&st.version, "version", false, "print the version and exit")

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
	if err := applyEnv(fs, getenv); err != nil {
		return st, err
	}
	if err := c.Validate(); err != nil {
		return st, fmt.Errorf("%w: %w", ErrUsage, err)
	}
	return st, nil
}

// applyEnv sets every flag not given on the command line from its
// environment variable, if that is set.
func applyEnv(fs *flag.FlagSet, getenv func(string) string) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || given[f.Name] || f.Name == "version" {
			return
		}
		name := envName(f.Name)
		if v := getenv(name); v != "" {
			if e := f.Value.Set(v); e != nil {
				err = fmt.Errorf("%w: invalid value %q for %s (flag -%s): %w", ErrUsage, v, name, f.Name, e)
			}
		}
	})
	return err
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

// parsePrefixes parses a comma-separated list of CIDRs or addresses; "none"
// or an empty value means no prefix.
func parsePrefixes(v string) ([]netip.Prefix, error) {
	var ps []netip.Prefix
	for _, item := range splitList(v) {
		if item == "none" {
			continue
		}
		if p, err := netip.ParsePrefix(item); err == nil {
			ps = append(ps, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(item)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR or an IP address", item)
		}
		ps = append(ps, netip.PrefixFrom(a, a.BitLen()))
	}
	return ps, nil
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
