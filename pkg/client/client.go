package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// Client talks to one Pillarbox Event Dispatcher: it publishes events
// ([Client.Publish], [Client.PublishBatch]) and subscribes to them
// ([Client.Subscribe]).
//
// The zero value is not usable: set BaseURL. A Client is a plain struct of
// settings, cheap to copy; it holds no connection of its own (they belong to
// HTTPClient's Transport). Its methods are safe for concurrent use, as long
// as its fields are not changed while they run.
type Client struct {
	// BaseURL is where the service answers, "http" or "https", with or
	// without a path prefix ("https://events.example.com",
	// "http://10.0.0.5:8080/dispatcher"): requests go to BaseURL's path
	// followed by /api/events and /events. A query or fragment is ignored.
	BaseURL string
	// PublishToken, when set, is sent as "Authorization: Bearer <token>"
	// with every POST: the service's -publish-token.
	PublishToken string
	// ListenToken, when set, is sent as "Authorization: Bearer <token>"
	// when subscribing: the service's -listen-token. (The header, rather
	// than the token query parameter browsers need, keeps it out of access
	// logs.)
	ListenToken string
	// HTTPClient sends the requests; nil means [http.DefaultClient]. Its
	// Timeout, if any, bounds each publish; subscriptions ignore it (a
	// stream lasts as long as it is wanted): bound them with their context.
	HTTPClient *http.Client
}

// httpClient returns the client requests go through.
func (c *Client) httpClient() *http.Client {
	if c.HTTPClient != nil {
		return c.HTTPClient
	}
	return http.DefaultClient
}

// endpoint returns the URL of path under BaseURL, with the query q.
func (c *Client) endpoint(path string, q url.Values) (string, error) {
	u, err := url.Parse(c.BaseURL)
	if ue := (*url.Error)(nil); errors.As(err, &ue) {
		err = ue.Err // not a *url.Error, which IsRetryable takes for a failed request
	}
	if err != nil {
		return "", fmt.Errorf("client: BaseURL %q: %w", c.BaseURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return "", fmt.Errorf("client: BaseURL %q: want http:// or https:// and a host", c.BaseURL)
	}
	u = u.JoinPath(path)
	u.RawQuery, u.Fragment, u.RawFragment = q.Encode(), "", ""
	return u.String(), nil
}

// publishQuery returns the query of a POST on topic (empty: the default) of
// events named event (empty: plain messages).
func publishQuery(topic, event string) url.Values {
	q := url.Values{}
	if topic != "" {
		q.Set("topic", topic)
	}
	if event != "" {
		q.Set("event", event)
	}
	return q
}

// setAuth sets "Authorization: Bearer <token>" when token is set.
func setAuth(h http.Header, token string) {
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
}

// post sends body to /api/events and returns the answer's body when it is a
// 200 (at most maxAnswer bytes), an *Error otherwise.
func (c *Client) post(ctx context.Context, topic, event, contentType string, body []byte, opts *PublishOptions) ([]byte, error) {
	target, err := c.endpoint("api/events", publishQuery(topic, event))
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("client: %v", err) //nolint:errorlint // not a *url.Error: nothing was sent
	}
	req.Header.Set("Content-Type", contentType)
	setAuth(req.Header, c.PublishToken)
	if opts != nil && opts.IdempotencyKey != "" {
		req.Header.Set("Idempotency-Key", opts.IdempotencyKey)
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return nil, err // a *url.Error
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, responseError(resp)
	}
	// The service said 200: the events were accepted, whatever happens to
	// the rest of its answer.
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	return answer, nil
}

// maxAnswer bounds what is read of a successful answer ({"accepted":N}).
const maxAnswer = 4 << 10
