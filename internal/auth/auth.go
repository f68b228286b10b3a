// Package auth checks the shared-secret tokens that guard publishing and
// listening, and keeps them out of logs.
//
// A [Tokens] set holds the tokens a deployment accepts; several at once let
// an operator rotate a token without downtime (add the new one, move the
// clients, remove the old one). Tokens are compared in constant time, by
// their SHA-256 digests, so neither a candidate's content nor which token it
// matched shows in the response time.
//
// Publishers send "Authorization: Bearer <token>" ([Bearer]). Listeners may
// also send the token as the "token" query parameter or the
// "dispatcher_token" cookie ([ListenerToken]), because the browser's
// EventSource cannot set headers. A token in a query string ends up in access
// logs: [AppendRedactedURI] blanks it out before a request URI is logged.
package auth

import "errors"

// Sentinel errors.
var (
	// ErrInvalidToken is wrapped by the error ParseTokens returns for an
	// empty item or an item with whitespace or a control character inside.
	// The message names the item's position, never its content.
	ErrInvalidToken = errors.New("auth: invalid token")
)
