package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Errors a caller branches on. Compare with [errors.Is]: an [*Error] matches
// the sentinel of its status (see [Error.Is]), and the other errors the
// package returns wrap theirs.
var (
	// ErrInvalid matches a 400: the service refused the event or batch (not
	// a JSON object, invalid JSON or UTF-8, a bad topic or event name, a
	// batch line that is none of these: nothing was published) or the
	// listener's request (a bad topic). Sending it again cannot succeed.
	ErrInvalid = errors.New("client: invalid request")
	// ErrUnauthorized matches a 401 (the publish or listen token is missing
	// or wrong) and a 403 (the request's origin is not allowed).
	ErrUnauthorized = errors.New("client: unauthorized")
	// ErrTooLarge matches a 413 (an event over the service's -max-body, a
	// batch over -max-batch or -max-batch-events: split it) and a 431 (the
	// request's head is too large).
	ErrTooLarge = errors.New("client: request too large")
	// ErrConflict matches a 409: the Idempotency-Key was already used with
	// another body (with NATS). The first request's event stands.
	ErrConflict = errors.New("client: idempotency key reused with another body")
	// ErrUnavailable matches a 502, 503 or 504: the service is shutting
	// down, cannot reach NATS, or has too many topics; [Error.RetryAfter]
	// says when to try again. See also [IsRetryable].
	ErrUnavailable = errors.New("client: service unavailable")
	// ErrNotEventStream is returned, wrapped, by [Client.Subscribe] and
	// [Subscription.Next] when GET /events answers 200 with another
	// Content-Type than text/event-stream (a proxy's page, a wrong URL): as
	// browsers do, the subscription gives up.
	ErrNotEventStream = errors.New("client: the answer is not an event stream")
	// ErrTooLong is returned by [Reader.Next], [Reader.NextMessage] and
	// [Subscription.Next] for a stream line, or an event's data, longer
	// than 16 MiB: the stream cannot be read past it. It wraps
	// [bufio.ErrTooLong].
	ErrTooLong = fmt.Errorf("client: stream line or event longer than %d bytes: %w", maxLine, bufio.ErrTooLong)
	// ErrClosed is returned by [Subscription.Next] once Close was called.
	ErrClosed = errors.New("client: subscription closed")
)

// Error is an answer of the service other than success: its HTTP status,
// its message ({"error":"..."}), and what else it said. Every method of
// [Client] returns one, as an error of type *Error, for such an answer; use
// [errors.As] to read it, or [errors.Is] with the sentinels above.
type Error struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Message is the service's error message, or, for an answer that is
	// not the service's JSON (a proxy's), the start of its body or the
	// status text.
	Message string
	// Accepted, for a batch that failed part-way (503 with NATS), is how
	// many of its first events were stored and will be broadcast; the
	// others may or may not be. Retry the whole batch with the same
	// Idempotency-Key. 0 otherwise.
	Accepted int
	// RetryAfter is the delay the Retry-After header asked for (503: 1 s
	// while shutting down or NATS is out, 60 s for too many topics), 0 when
	// there was none.
	RetryAfter time.Duration
}

// Error returns "client: <status> <text>: <message>".
func (e *Error) Error() string {
	return fmt.Sprintf("client: %d %s: %s", e.StatusCode, http.StatusText(e.StatusCode), e.Message)
}

// Is reports whether the error's status is the one target stands for:
// [ErrInvalid] (400), [ErrUnauthorized] (401, 403), [ErrConflict] (409),
// [ErrTooLarge] (413, 431), [ErrUnavailable] (502, 503, 504).
func (e *Error) Is(target error) bool {
	switch target {
	case ErrInvalid:
		return e.StatusCode == http.StatusBadRequest
	case ErrUnauthorized:
		return e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden
	case ErrConflict:
		return e.StatusCode == http.StatusConflict
	case ErrTooLarge:
		return e.StatusCode == http.StatusRequestEntityTooLarge ||
			e.StatusCode == http.StatusRequestHeaderFieldsTooLarge
	case ErrUnavailable:
		return e.StatusCode == http.StatusBadGateway || e.StatusCode == http.StatusServiceUnavailable ||
			e.StatusCode == http.StatusGatewayTimeout
	}
	return false
}

// IsRetryable reports whether sending the same request again later may
// succeed: an [*Error] with a status that says "not now" (408, 429, 500,
// 502, 503, 504; wait [Error.RetryAfter] when it is set), or a request that
// failed on the way (the network, a timeout) without the caller canceling
// it. After such a failure the service may or may not have accepted the
// event: a retry with the same Idempotency-Key is safe with NATS, and may
// broadcast the event twice without it. Errors found before anything was
// sent (an event that does not encode, a bad BaseURL) and the caller's own
// cancellation are not retryable.
func IsRetryable(err error) bool {
	var e *Error
	if errors.As(err, &e) {
		return retryableStatus(e.StatusCode)
	}
	var ue *url.Error
	return errors.As(err, &ue) && !errors.Is(err, context.Canceled)
}

// retryableStatus reports whether a status says "not now" rather than "no".
func retryableStatus(code int) bool {
	switch code {
	case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
		http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// maxErrorBody bounds what is read of an error answer.
const maxErrorBody = 64 << 10

// responseError reads the error answer resp (its body is left to the caller
// to close).
func responseError(resp *http.Response) *Error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e := &Error{StatusCode: resp.StatusCode, RetryAfter: retryAfter(resp.Header.Get("Retry-After"), time.Now())}
	var answer struct {
		Error    *string `json:"error"`
		Accepted int     `json:"accepted"`
	}
	if json.Unmarshal(body, &answer) == nil && answer.Error != nil {
		e.Message, e.Accepted = *answer.Error, answer.Accepted
		return e
	}
	// Not the service's JSON: a proxy's answer, say.
	text := strings.TrimSpace(strings.ToValidUTF8(string(body), "\uFFFD"))
	if len(text) > 200 {
		cut := 200
		for cut > 0 && !utf8.RuneStart(text[cut]) {
			cut--
		}
		text = text[:cut] + "…"
	}
	if text == "" {
		text = http.StatusText(resp.StatusCode)
	}
	e.Message = text
	return e
}

// retryAfter parses a Retry-After header: delay-seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
