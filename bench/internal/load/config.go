package load

import (
	"errors"
	"fmt"
	"io"
	"time"
)

// Listener client implementations.
const (
	ClientRaw     = "raw"     // raw TCP + own chunked decoder, pooled buffers
	ClientNetHTTP = "nethttp" // net/http client (for comparison)
)

// Config are the parameters of a run.
type Config struct {
	URL string
	// PostURLs, when not empty, are the base URLs the producers post to,
	// producer i to PostURLs[i%len]: instances sharing one NATS stream,
	// whose listeners (on URL) then receive events posted to the others.
	PostURLs       []string
	Listeners      int
	Producers      int
	Rate           float64 // total events/s over all producers; 0 = as fast as possible
	Events         int64   // stop the measured phase after this many events in total (0 = no limit)
	Duration       time.Duration
	Warmup         time.Duration
	Drain          time.Duration // longest wait for stragglers after producers stop
	DrainQuiet     time.Duration // stop draining early after this long without any delivery
	ConnectTimeout time.Duration // time allowed for all listeners to connect and be greeted
	PostTimeout    time.Duration
	Size           int     // approximate event body size in bytes
	Sample         int     // parse 1 in Sample data frames (latency, order)
	SlowFraction   float64 // fraction of listeners that stop reading once connected
	ServerPID      int     // sample this process's RSS and CPU when > 0
	// ExtraPIDs are more server processes (other instances) whose RSS and
	// CPU are added to ServerPID's.
	ExtraPIDs []int
	// ScrapeInterval, when positive, makes the tool GET <URL>/metrics this
	// often during the measured phase, as a Prometheus server would.
	ScrapeInterval  time.Duration
	Label           string
	Client          string
	SourceIPs       int // local 127.0.0.x addresses to spread listeners over (0 = auto)
	DialConcurrency int // listeners connecting at once
	WaitGreeting    bool
	Insecure        bool      // skip TLS verification
	Progress        io.Writer // live progress line once per second (nil: none)

	// ReadyOnSend counts a listener as connected once its request is
	// written, before any response byte: for servers that send nothing, not
	// even the response head, until the first event (the original service).
	// The server may register the listener a moment later, so a warm-up
	// should precede the measured phase. Raw client only.
	ReadyOnSend bool

	// Centrifugo, when not nil, selects ProtocolCentrifugo (the server is
	// Centrifugo); nil is ProtocolDispatcher.
	Centrifugo *Centrifugo

	// Self-test parameters (mode self-test only).
	FramesPerChunk int
}

// DefaultConfig returns the defaults the command line uses.
func DefaultConfig() Config {
	return Config{
		URL:             "http://127.0.0.1:8080",
		Listeners:       100,
		Producers:       4,
		Duration:        10 * time.Second,
		Warmup:          2 * time.Second,
		Drain:           5 * time.Second,
		DrainQuiet:      time.Second,
		ConnectTimeout:  60 * time.Second,
		PostTimeout:     10 * time.Second,
		Size:            128,
		Sample:          16,
		Client:          ClientRaw,
		DialConcurrency: 256,
		WaitGreeting:    true,
		FramesPerChunk:  1,
	}
}

func (c *Config) validate() error {
	switch {
	case c.Listeners < 0, c.Producers < 0:
		return errors.New("listeners and producers must not be negative")
	case c.Rate < 0:
		return errors.New("rate must not be negative")
	case c.Events < 0:
		return errors.New("events must not be negative")
	case c.Duration <= 0:
		return errors.New("duration must be positive")
	case c.Sample < 0:
		return errors.New("sample must not be negative")
	case c.SlowFraction < 0 || c.SlowFraction > 1:
		return errors.New("slow must be within [0,1]")
	case c.Client != ClientRaw && c.Client != ClientNetHTTP:
		return fmt.Errorf("client must be %q or %q", ClientRaw, ClientNetHTTP)
	case c.ReadyOnSend && c.Client != ClientRaw:
		// net/http's client returns the response only once its head has
		// arrived, which such servers send with the first event.
		return fmt.Errorf("ready-on-send needs the %q client", ClientRaw)
	}
	if err := c.Centrifugo.validate(c); err != nil {
		return err
	}
	if c.DialConcurrency <= 0 {
		c.DialConcurrency = 256
	}
	if c.PostTimeout <= 0 {
		c.PostTimeout = 10 * time.Second
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 60 * time.Second
	}
	if c.DrainQuiet <= 0 {
		c.DrainQuiet = time.Second
	}
	return nil
}

func (c *Config) params() Params {
	return Params{
		URL:             c.URL,
		Protocol:        c.protocol(),
		Listeners:       c.Listeners,
		Producers:       c.Producers,
		Rate:            c.Rate,
		Events:          c.Events,
		DurationSec:     c.Duration.Seconds(),
		WarmupSec:       c.Warmup.Seconds(),
		DrainSec:        c.Drain.Seconds(),
		ConnectTimeout:  c.ConnectTimeout.Seconds(),
		Size:            c.Size,
		BodyBytes:       len(NewBody("00000000", 0, c.Size).Bytes()),
		Sample:          c.Sample,
		SlowFraction:    c.SlowFraction,
		Client:          c.Client,
		SourceIPs:       c.SourceIPs,
		ServerPID:       c.ServerPID,
		ExtraPIDs:       c.ExtraPIDs,
		PostURLs:        c.PostURLs,
		DialConcurrency: c.DialConcurrency,
		ReadyOnSend:     c.ReadyOnSend,
	}
}
