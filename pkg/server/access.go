package server

import (
	"fmt"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/auth"
)

// parseTokens turns a setting's tokens into a token set, or an error naming
// the setting.
func parseTokens(setting string, tokens []string) (*auth.Tokens, error) {
	t, err := auth.ParseTokens(strings.Join(tokens, ","))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalidConfig, setting, err)
	}
	return t, nil
}

// publishAllowed reports whether a POST's Authorization header carries a
// publish token, if publish tokens are set.
func (s *Server) publishAllowed(h *fasthttp.RequestHeader) bool {
	if !s.publishTokens.Enabled() {
		return true
	}
	tok, ok := auth.Bearer(h.Peek(fasthttp.HeaderAuthorization))
	return ok && s.publishTokens.Match(tok)
}

// listenAllowed reports whether a listener's request carries a listen token,
// if listen tokens are set: as a bearer token, else a "token" query
// parameter, else a "dispatcher_token" cookie (EventSource cannot send
// headers).
func (s *Server) listenAllowed(ctx *fasthttp.RequestCtx) bool {
	return !s.listenTokens.Enabled() || s.listenTokens.Match(auth.ListenerToken(&ctx.Request))
}
