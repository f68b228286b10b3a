package natsbridge_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/natsbridge"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	valid := natsbridge.Config{URLs: "nats://127.0.0.1:4222"}
	for _, tc := range []struct {
		name    string
		change  func(*natsbridge.Config)
		setting string // "" when valid
	}{
		{"defaults", func(*natsbridge.Config) {}, ""},
		{"several URLs", func(c *natsbridge.Config) { c.URLs = "nats://a:4222, tls://b:4222,c:4222,wss://d" }, ""},
		{"everything set", func(c *natsbridge.Config) {
			c.Stream, c.Subject, c.Storage, c.Replicas = "EVENTS-1", "a.b_c", natsbridge.StorageFile, 3
			c.MaxAge, c.PublishTimeout, c.StartTimeout = time.Hour, time.Second, time.Second
		}, ""},
		{"no URL", func(c *natsbridge.Config) { c.URLs = " " }, "URLs"},
		{"empty URL entry", func(c *natsbridge.Config) { c.URLs = "nats://a:1,,nats://b:2" }, "URLs"},
		{"http URL", func(c *natsbridge.Config) { c.URLs = "http://a:1" }, "URLs"},
		{"URL without host", func(c *natsbridge.Config) { c.URLs = "nats://:4222" }, "URLs"},
		{"cert without key", func(c *natsbridge.Config) { c.TLSCert = "cert.pem" }, "TLSCert/TLSKey"},
		{"stream with dot", func(c *natsbridge.Config) { c.Stream = "a.b" }, "Stream"},
		{"stream with space", func(c *natsbridge.Config) { c.Stream = "a b" }, "Stream"},
		{"subject wildcard", func(c *natsbridge.Config) { c.Subject = "a.>" }, "Subject"},
		{"subject empty token", func(c *natsbridge.Config) { c.Subject = "a..b" }, "Subject"},
		{"storage", func(c *natsbridge.Config) { c.Storage = "disk" }, "Storage"},
		{"max age too short", func(c *natsbridge.Config) { c.MaxAge = time.Millisecond }, "MaxAge"},
		{"negative max age", func(c *natsbridge.Config) { c.MaxAge = -time.Minute }, "MaxAge"},
		{"replicas", func(c *natsbridge.Config) { c.Replicas = 6 }, "Replicas"},
		{"negative replicas", func(c *natsbridge.Config) { c.Replicas = -1 }, "Replicas"},
		{"publish timeout", func(c *natsbridge.Config) { c.PublishTimeout = time.Microsecond }, "PublishTimeout"},
		{"start timeout", func(c *natsbridge.Config) { c.StartTimeout = -time.Second }, "StartTimeout"},
		{"name with line break", func(c *natsbridge.Config) { c.Name = "a\nb" }, "Name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := valid
			tc.change(&cfg)
			err := cfg.Validate()
			if tc.setting == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, natsbridge.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.setting+":") {
				t.Fatalf("Validate() = %v, want ErrInvalidConfig naming %s", err, tc.setting)
			}
		})
	}
}

func TestNewChecksFilesAndHandler(t *testing.T) {
	t.Parallel()
	h := func(natsbridge.Delivery) {}
	dir := t.TempDir()
	creds := filepath.Join(dir, "user.creds")
	if err := os.WriteFile(creds, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := natsbridge.Config{URLs: "nats://127.0.0.1:1", CredsFile: creds}
	b, err := natsbridge.New(cfg, h, nil)
	if err != nil {
		t.Fatalf("New with a readable creds file: %v", err)
	}
	if st := b.Status(); st.State != natsbridge.StateNew || st.State.String() != "new" {
		t.Fatalf("Status of a new bridge = %+v", st)
	}
	cfg.CredsFile = filepath.Join(dir, "missing.creds")
	if _, err := natsbridge.New(cfg, h, nil); !errors.Is(err, natsbridge.ErrInvalidConfig) || !strings.Contains(err.Error(), "CredsFile") {
		t.Fatalf("New with a missing creds file: %v, want ErrInvalidConfig naming CredsFile", err)
	}
	cfg.CredsFile = ""
	if _, err := natsbridge.New(cfg, nil, nil); !errors.Is(err, natsbridge.ErrInvalidConfig) {
		t.Fatalf("New with a nil handler: %v, want ErrInvalidConfig", err)
	}
}

func TestStateString(t *testing.T) {
	t.Parallel()
	want := map[natsbridge.State]string{
		natsbridge.StateNew: "new", natsbridge.StateJoining: "joining", natsbridge.StateReady: "ready",
		natsbridge.StateDisconnected: "disconnected", natsbridge.StateConflict: "conflict",
		natsbridge.StateClosed: "closed", natsbridge.State(200): "unknown",
	}
	for s, name := range want {
		if s.String() != name {
			t.Errorf("State(%d).String() = %q, want %q", s, s.String(), name)
		}
	}
}

func TestIdentity(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 1, 10, 0, 0, 123456789, time.UTC)
	id := natsbridge.Identity{Stream: "S", Created: at}
	if got := id.String(); got != "S@"+"1796119200123456789" {
		t.Errorf("String() = %q", got)
	}
	other := natsbridge.Identity{Stream: "S", Created: at.In(time.FixedZone("X", 3600))}
	if !id.Equal(other) {
		t.Error("Equal is false for the same instant in another zone")
	}
	if id.Equal(natsbridge.Identity{Stream: "S", Created: at.Add(time.Nanosecond)}) {
		t.Error("Equal is true for creation times a nanosecond apart")
	}
	if id.IsZero() || !(natsbridge.Identity{}).IsZero() {
		t.Error("IsZero is wrong")
	}
	if got := natsbridge.BatchMsgID("key", 12); got != "b:12:key" {
		t.Errorf("BatchMsgID = %q", got)
	}
	// A single event's key can never name a batch line: "K:0" was line 0
	// of key K before the namespaces were separated.
	if single, line := natsbridge.EventMsgID("K:0"), natsbridge.BatchMsgID("K", 0); single == line || single != "e:K:0" {
		t.Errorf("EventMsgID(K:0) = %q, BatchMsgID(K, 0) = %q: want distinct ids, e:K:0", single, line)
	}
}
