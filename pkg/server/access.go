package server

import (
	"fmt"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/auth"
)

// Access control.
//
// Without any token configured, anyone may publish and listen. Static tokens
// (Config.PublishTokens, Config.ListenTokens) are shared secrets that allow
// everything. Signed tokens (Deps.Tokens, JSON Web Tokens in the
// application) carry a Grant: the topics their holder may publish on and
// listen to. Both may be configured at once: a static token is tried first.

// Grant is what a signed token allows its holder. Implementations are safe
// for concurrent use.
type Grant interface {
	// Subject identifies the token's holder (a JWT's "sub"); it may be
	// logged, at debug level.
	Subject() string
	// Expires is when the token stops being valid; the zero time: never.
	// A listener's stream ends then.
	Expires() time.Time
	// CanPublish reports whether the holder may publish on topic.
	CanPublish(topic string) bool
	// CanSubscribe reports whether the holder may listen to a topic or a
	// topic pattern (every topic it can match is allowed).
	CanSubscribe(topicOrPattern string) bool
	// SubscribePatterns are the topics and patterns the holder may listen
	// to: what a listener that names no topic receives.
	SubscribePatterns() []string
}

// TokenVerifier verifies signed tokens. Verify returns the token's grant, or
// an error saying why the token is not valid (its message must not contain
// the token). Implementations are safe for concurrent use; Verify may be
// called on every request, so it should cache what it verified.
type TokenVerifier interface {
	Verify(token string) (Grant, error)
}

// refusal is why a request is refused from its head, before its body is
// read or its stream starts.
type refusal struct {
	msg          string
	authenticate string // the WWW-Authenticate value, for 401 and 403
	status       int
	reason       RejectReason
	turnAway     TurnAwayReason
}

const bearerRealm = `Bearer realm="pillarbox-event-dispatcher"` //nolint:gosec // G101: an authentication realm, not a credential

var (
	noToken = func(what string) *refusal {
		return &refusal{status: fasthttp.StatusUnauthorized, reason: RejectUnauthorized, turnAway: TurnAwayUnauthorized,
			msg: "missing or invalid " + what + " token", authenticate: bearerRealm}
	}
	errorDescription = strings.NewReplacer(`"`, `'`, `\`, `/`)
)

// invalidToken refuses a signed token that did not verify.
func invalidToken(err error) *refusal {
	desc := errorDescription.Replace(err.Error())
	return &refusal{status: fasthttp.StatusUnauthorized, reason: RejectUnauthorized, turnAway: TurnAwayUnauthorized,
		msg:          "invalid token: " + err.Error(),
		authenticate: bearerRealm + `, error="invalid_token", error_description="` + desc + `"`}
}

// notAllowed refuses a topic a grant does not allow.
func notAllowed(what, topicOrPattern string) *refusal {
	return &refusal{status: fasthttp.StatusForbidden, reason: RejectForbidden, turnAway: TurnAwayForbidden,
		msg:          fmt.Sprintf("the token does not allow %s %q", what, topicOrPattern),
		authenticate: bearerRealm + `, error="insufficient_scope"`}
}

// parseTokens turns a setting's tokens into a token set, or an error naming
// the setting.
func parseTokens(setting string, tokens []string) (*auth.Tokens, error) {
	t, err := auth.ParseTokens(strings.Join(tokens, ","))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalidConfig, setting, err)
	}
	return t, nil
}

// access returns what token allows, given the static tokens of its kind:
// a nil grant and no refusal for everything (no token needed, or a static
// one), the signed token's grant, or a refusal.
func (s *Server) access(token []byte, static *auth.Tokens, what string) (Grant, *refusal) {
	switch {
	case !static.Enabled() && s.tokens == nil:
		return nil, nil // nothing configured: open
	case static.Enabled() && static.Match(token):
		return nil, nil
	case s.tokens == nil || len(token) == 0:
		return nil, noToken(what)
	}
	g, err := s.tokens.Verify(string(token))
	if err != nil {
		return nil, invalidToken(err)
	}
	return g, nil
}

// publishAccess checks a POST's Authorization header against the publish
// tokens and, unless topic is "" (its events name their topics, checked
// with canPublish once read), its topic against a signed token's grant. It
// returns the grant (nil: every topic allowed).
func (s *Server) publishAccess(h *fasthttp.RequestHeader, topic string) (Grant, *refusal) {
	tok, _ := auth.Bearer(h.Peek(fasthttp.HeaderAuthorization))
	g, r := s.access(tok, s.publishTokens, "publish")
	if r != nil {
		return nil, r
	}
	return g, canPublish(g, topic)
}

// canPublish refuses a topic a grant (nil: every topic) does not allow.
func canPublish(g Grant, topic string) *refusal {
	if g != nil && topic != "" && !g.CanPublish(topic) {
		return notAllowed("publishing on", topic)
	}
	return nil
}

// listenAccess checks a listener's token (a bearer token, else a "token"
// query parameter unless Config.NoQueryToken, else a "dispatcher_token"
// cookie: EventSource cannot send headers) against the listen tokens, and
// returns what it allows.
func (s *Server) listenAccess(ctx *fasthttp.RequestCtx) (Grant, *refusal) {
	var tok []byte
	if s.cfg.NoQueryToken {
		tok = auth.ListenerTokenNotInQuery(&ctx.Request)
	} else {
		tok = auth.ListenerToken(&ctx.Request)
	}
	return s.access(tok, s.listenTokens, "listen")
}

// subscription returns the topics (and patterns) a listener with grant g
// (nil: every topic allowed) that asked for topics gets, or a refusal: each
// asked for must be allowed; one that asked for none gets all it may.
func subscription(g Grant, topics []string) ([]string, *refusal) {
	if g == nil {
		return topics, nil
	}
	if len(topics) == 0 {
		allowed := g.SubscribePatterns()
		for _, p := range allowed {
			if p == ">" {
				return nil, nil // every topic
			}
		}
		if len(allowed) == 0 {
			return nil, notAllowed("listening to", "any topic")
		}
		return allowed, nil
	}
	for _, t := range topics {
		if !g.CanSubscribe(t) {
			return nil, notAllowed("listening to", t)
		}
	}
	return topics, nil
}
