package load

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
)

// Protocols sseload speaks.
const (
	// ProtocolDispatcher is the Pillarbox Event Dispatcher's API, also
	// spoken by bench/baseline and bench/original: listeners GET
	// <url>/events, producers POST the event itself to <url>/api/events,
	// every data block is an event.
	ProtocolDispatcher = "dispatcher"

	// ProtocolCentrifugo is Centrifugo's unidirectional SSE transport (see
	// Config.Centrifugo): listeners GET
	// <url>/connection/uni_sse?cf_connect=<connect command>, the command
	// carrying Centrifugo.Token, a connection JWT that subscribes them to
	// Centrifugo.Channel server-side; producers POST
	// {"channel":<Channel>,"data":<event>} to <url>/api/publish with
	// "X-API-Key: <APIKey>". Each event reaches a listener as
	// data: {"channel":<Channel>,"pub":{"data":<event>,…}}; the connect
	// reply ({"connect":…}) and pings ({}) are data blocks too, but not
	// events: they are counted apart (RunResult.ControlFrames).
	ProtocolCentrifugo = "centrifugo"
)

// wire is what differs between protocols on the wire.
type wire struct {
	// eventsPath is the path (and query) of the listeners' GET, after the
	// URL's own path.
	eventsPath string
	postPath   string
	// postHeaders are added to every POST.
	postHeaders [][2]string
	// bodyPrefix and bodySuffix wrap the event in the POST body.
	bodyPrefix, bodySuffix string
	// eventPrefix, when set, is how the payload of an event's first data
	// line starts; other data blocks are control frames.
	eventPrefix []byte
	// errorPrefix, when set, marks a 200 answer whose body starts with it
	// as a failed POST (Centrifugo reports some errors in the body).
	errorPrefix []byte
	// greeting, when set, is how the payload of the control frame that
	// greets a listener starts; without it, any first block does.
	greeting []byte
	// refusal, when set, is how the payload of a control frame that ends
	// the stream starts (the listener fails with it).
	refusal []byte
}

// Centrifugo configures ProtocolCentrifugo.
type Centrifugo struct {
	// Channel is the channel events are published to.
	Channel string
	// APIKey is the HTTP API key (X-API-Key) producers post with.
	APIKey string
	// Token is the connection JWT listeners send in their connect command;
	// it must subscribe them to Channel (its "channels" claim, see
	// CentrifugoToken).
	Token string
}

func (c *Config) protocol() string {
	if c.Centrifugo != nil {
		return ProtocolCentrifugo
	}
	return ProtocolDispatcher
}

// validate checks what the run needs (a nil c needs nothing).
func (cf *Centrifugo) validate(c *Config) error {
	switch {
	case cf == nil:
		return nil
	case cf.Channel == "":
		return errors.New("centrifugo: a channel is needed")
	case c.Producers > 0 && cf.APIKey == "":
		return errors.New("centrifugo: producers need the HTTP API key (-api-key)")
	case c.Listeners > 0 && cf.Token == "":
		return errors.New("centrifugo: listeners need a connection token subscribing them to the channel (-token)")
	}
	return nil
}

// newWire returns the wire details of the run's protocol.
func newWire(c *Config) wire {
	cf := c.Centrifugo
	if cf == nil {
		return wire{eventsPath: "/events", postPath: "/api/events"}
	}
	channel, _ := json.Marshal(cf.Channel) // a JSON string: cannot fail
	connect, _ := json.Marshal(struct {
		Token string `json:"token"`
	}{cf.Token})
	return wire{
		eventsPath:  "/connection/uni_sse?cf_connect=" + url.QueryEscape(string(connect)),
		postPath:    "/api/publish",
		postHeaders: [][2]string{{"X-API-Key", cf.APIKey}},
		bodyPrefix:  `{"channel":` + string(channel) + `,"data":`,
		bodySuffix:  `}`,
		eventPrefix: []byte(`{"channel":` + string(channel) + `,"pub":`),
		errorPrefix: []byte(`{"error"`),
		greeting:    []byte(`{"connect":`),
		refusal:     []byte(`{"disconnect":`),
	}
}

// CentrifugoToken returns a connection JWT (HS256, signed with secret) for
// user subject whose "channels" claim subscribes the connection to channel
// server-side, which is how a unidirectional Centrifugo client is
// subscribed. It never expires.
func CentrifugoToken(secret, subject, channel string) string {
	enc := base64.RawURLEncoding
	header := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	claims, _ := json.Marshal(struct { // strings only: cannot fail
		Sub      string   `json:"sub"`
		Channels []string `json:"channels"`
	}{subject, []string{channel}})
	signed := header + "." + enc.EncodeToString(claims)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(signed))
	return signed + "." + enc.EncodeToString(mac.Sum(nil))
}
