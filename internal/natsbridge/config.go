package natsbridge

import (
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"
)

// Defaults for the zero values of Config.
const (
	DefaultStream         = "PILLARBOX_EVENTS"
	DefaultSubject        = "pillarbox.events"
	DefaultMaxAge         = 10 * time.Minute
	DefaultStorage        = StorageMemory
	DefaultReplicas       = 1
	DefaultName           = "pillarbox-event-dispatcher"
	DefaultPublishTimeout = time.Second
	DefaultStartTimeout   = 5 * time.Second
)

// Limits on Config values.
const (
	maxReplicas     = 5
	maxStreamLen    = 255
	maxPrefixLen    = 128
	minMaxAge       = time.Second
	maxDupWindow    = 2 * time.Minute // JetStream's own default duplicate window
	minPublishLimit = 10 * time.Millisecond
)

// Storage is where the stream keeps its messages.
type Storage string

// Storage values.
const (
	// StorageMemory keeps messages in the servers' memory: fastest, and lost
	// when the servers holding the stream restart (the bridge then creates the
	// stream again, with a new Identity).
	StorageMemory Storage = "memory"
	// StorageFile keeps messages in files; they survive restarts.
	StorageFile Storage = "file"
)

// Config is the NATS side of the service. The zero value of every field but
// URLs takes the default named in its comment. A Config is a plain value: copy
// it freely.
type Config struct {
	// URLs lists the NATS servers, comma-separated (nats://host:port,
	// tls://host:port, ws:// or wss://; a bare host:port means nats://).
	// Required.
	URLs string
	// CredsFile is a NATS credentials file (JWT and NKey seed); empty for none.
	CredsFile string
	// TLSCA is a PEM file of the certificate authorities to trust for the
	// servers' certificates; empty for the system's.
	TLSCA string
	// TLSCert and TLSKey are the PEM client certificate and key for mutual
	// TLS; both or neither.
	TLSCert, TLSKey string
	// Stream is the JetStream stream's name (default PILLARBOX_EVENTS).
	Stream string
	// Subject is the subject prefix (default pillarbox.events): topic t is
	// published on <Subject>.t and the stream captures <Subject>.>.
	Subject string
	// Storage is StorageMemory (default) or StorageFile.
	Storage Storage
	// Name is the connection's name, as servers show it (default
	// pillarbox-event-dispatcher).
	Name string
	// MaxAge is how long the stream keeps a message (default 10m, at least
	// 1s). The duplicate window for message ids is the smaller of MaxAge and
	// two minutes.
	MaxAge time.Duration
	// PublishTimeout bounds the wait for one acknowledgement, and for the
	// creation or update of the stream (default 1s: an acknowledgement takes
	// milliseconds; one that does not come means a server is gone). Other
	// requests to the JetStream API (stream info, consumer creation, probes)
	// wait at most the smaller of it and 1s, and are sent again rather than
	// waited for.
	PublishTimeout time.Duration
	// StartTimeout bounds Start (default 5s): past it, Start returns and the
	// bridge keeps trying in the background.
	StartTimeout time.Duration
	// Replicas is the number of servers holding the stream, 1 to 5
	// (default 1).
	Replicas int
}

// Validate reports the first setting that cannot work, wrapping
// ErrInvalidConfig with the setting's name. It reads no file and opens no
// connection.
func (c Config) Validate() error {
	if _, err := splitURLs(c.URLs); err != nil {
		return err
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return invalid("TLSCert/TLSKey", "a client certificate needs its key, and the other way round")
	}
	if c.Stream != "" {
		if err := checkStreamName(c.Stream); err != nil {
			return err
		}
	}
	if c.Subject != "" && (len(c.Subject) > maxPrefixLen || !validTokens(c.Subject)) {
		return invalid("Subject", fmt.Sprintf("%q: want dot-separated tokens of A-Z a-z 0-9 _ -, at most %d bytes", c.Subject, maxPrefixLen))
	}
	switch c.Storage {
	case "", StorageMemory, StorageFile:
	default:
		return invalid("Storage", fmt.Sprintf("%q: want %q or %q", c.Storage, StorageMemory, StorageFile))
	}
	if c.MaxAge != 0 && c.MaxAge < minMaxAge {
		return invalid("MaxAge", fmt.Sprintf("%v: want at least %v", c.MaxAge, minMaxAge))
	}
	if c.Replicas < 0 || c.Replicas > maxReplicas {
		return invalid("Replicas", fmt.Sprintf("%d: want 1 to %d", c.Replicas, maxReplicas))
	}
	if c.PublishTimeout != 0 && c.PublishTimeout < minPublishLimit {
		return invalid("PublishTimeout", fmt.Sprintf("%v: want at least %v", c.PublishTimeout, minPublishLimit))
	}
	if c.StartTimeout < 0 {
		return invalid("StartTimeout", fmt.Sprintf("%v: want at least 0", c.StartTimeout))
	}
	if strings.ContainsAny(c.Name, "\r\n") {
		return invalid("Name", "contains a line break")
	}
	return nil
}

// withDefaults returns c with every zero value replaced by its default.
func (c Config) withDefaults() Config {
	if c.Stream == "" {
		c.Stream = DefaultStream
	}
	if c.Subject == "" {
		c.Subject = DefaultSubject
	}
	if c.MaxAge == 0 {
		c.MaxAge = DefaultMaxAge
	}
	if c.Storage == "" {
		c.Storage = DefaultStorage
	}
	if c.Replicas == 0 {
		c.Replicas = DefaultReplicas
	}
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.PublishTimeout == 0 {
		c.PublishTimeout = DefaultPublishTimeout
	}
	if c.StartTimeout == 0 {
		c.StartTimeout = DefaultStartTimeout
	}
	return c
}

// dupWindow is the stream's duplicate window for c (with defaults applied).
func (c Config) dupWindow() time.Duration { return min(c.MaxAge, maxDupWindow) }

// checkFiles tells whether the credentials and TLS files can be read, so that
// New refuses a typo at once rather than the first connection attempt.
func (c Config) checkFiles() error {
	for _, f := range []struct{ name, path string }{
		{"CredsFile", c.CredsFile}, {"TLSCA", c.TLSCA}, {"TLSCert", c.TLSCert}, {"TLSKey", c.TLSKey},
	} {
		if f.path == "" {
			continue
		}
		fh, err := os.Open(f.path)
		if err != nil {
			return invalid(f.name, err.Error())
		}
		_ = fh.Close()
	}
	return nil
}

// splitURLs parses the comma-separated server list: every entry must be a
// URL with a host and a scheme NATS clients know (nats, tls, ws, wss), or a
// bare host:port. Spaces around entries are ignored; empty entries are not.
func splitURLs(list string) ([]string, error) {
	if strings.TrimSpace(list) == "" {
		return nil, invalid("URLs", "empty")
	}
	parts := strings.Split(list, ",")
	urls := make([]string, 0, len(parts))
	for _, p := range parts {
		p = strings.TrimSpace(p)
		if p == "" {
			return nil, invalid("URLs", fmt.Sprintf("%q has an empty entry", list))
		}
		raw := p
		if !strings.Contains(p, "://") {
			raw = "nats://" + p
		}
		u, err := url.Parse(raw)
		if err != nil {
			return nil, invalid("URLs", fmt.Sprintf("%q: %v", p, err))
		}
		switch u.Scheme {
		case "nats", "tls", "ws", "wss":
		default:
			return nil, invalid("URLs", fmt.Sprintf("%q: scheme %q, want nats, tls, ws or wss", p, u.Scheme))
		}
		if u.Hostname() == "" {
			return nil, invalid("URLs", fmt.Sprintf("%q: no host", p))
		}
		urls = append(urls, raw)
	}
	return urls, nil
}

// checkStreamName applies JetStream's rules for stream names: printable
// ASCII without spaces, '.', '*', '>' or path separators, at most 255 bytes.
func checkStreamName(name string) error {
	if len(name) > maxStreamLen {
		return invalid("Stream", fmt.Sprintf("longer than %d bytes", maxStreamLen))
	}
	for i := range len(name) {
		if c := name[i]; c <= ' ' || c >= 0x7f || strings.IndexByte(".*>/\\", c) >= 0 {
			return invalid("Stream", fmt.Sprintf("%q: byte %q not allowed", name, c))
		}
	}
	return nil
}

func invalid(setting, why string) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidConfig, setting, why)
}
