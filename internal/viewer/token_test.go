package viewer_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/golang-jwt/jwt/v5"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/browsertest"
	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/jwtauth"
)

// tokenSecret signs the signed tokens of these tests (HS256).
var tokenSecret = []byte("viewer-test-secret-0123456789abc")

// signedToken returns an HS256 token for sub, valid for an hour from exp's
// second, that grants the publish and subscribe patterns.
func signedToken(tb testing.TB, sub string, exp time.Time, publish, subscribe []string) string {
	tb.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": sub, "exp": exp.Unix(), "iat": time.Now().Add(-time.Minute).Unix(),
		"pillarbox": map[string]any{"publish": publish, "subscribe": subscribe},
	}).SignedString(tokenSecret)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// postSigned publishes body on topic with a bearer token, failing the test
// unless it is accepted.
func postSigned(tb testing.TB, c *http.Client, s *service, token, topic, body string) {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPost, s.url()+"/api/events?topic="+topic, strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.Do(req)
	if err != nil {
		tb.Fatalf("POST: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("POST on %s: %d", topic, resp.StatusCode)
	}
}

// TestViewerWithASignedTokenInItsCookie: opened with a dispatcher_token
// cookie holding a signed token (HttpOnly, as a login service would set
// it: the page cannot read it, the browser sends it), the viewer streams
// what the token allows and only that, and says so: "Token allows:
// player.*, ads; expires ...". Asking for a topic the token allows narrows
// the stream; asking for another one shows the service's refusal.
func TestViewerWithASignedTokenInItsCookie(t *testing.T) {
	v, err := jwtauth.New(jwtauth.Config{Secret: tokenSecret}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	svc := startServiceWith(t, "127.0.0.1:0", nil, v.ForServer())
	c := client(t)
	ctx := browsertest.New(t)
	console := browsertest.RecordConsole(t, ctx)
	exp := time.Now().Add(time.Hour)
	tok := signedToken(t, "viewer", exp, nil, []string{"player.*", "ads"})
	producer := signedToken(t, "producer", exp, []string{">"}, nil)

	do(t, ctx, func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		httpOnly := true
		_, err := cdp.Call(ctx, tg, network.SetCookie, network.SetCookieParams{
			Name: "dispatcher_token", Value: tok, URL: svc.url() + "/", HTTPOnly: &httpOnly, SameSite: network.CookieSameSiteStrict,
		})
		return chromedp.Void{}, err
	}, chromedp.Navigate(svc.url()+"/"))
	until(t, ctx, waitFor, "state open", stateIs("open"))
	want := "Token allows: player.*, ads; expires " + time.Unix(exp.Unix(), 0).UTC().Format(time.RFC3339)
	until(t, ctx, waitFor, "what the token allows", fmt.Sprintf(`!document.querySelector('#grant').hidden
		&& document.querySelector('#grant').textContent.trim() === %q`, want))

	t.Log("step: only the topics the token allows")
	for _, e := range []struct{ topic, marker string }{
		{"player.1", "m-player-1"}, {"video", "m-video"}, {"ads", "m-ads"}, {"player.1.x", "m-deep"},
		{"default", "m-default"}, {"player.2", "m-player-2"},
	} {
		postSigned(t, c, svc, producer, e.topic, `{"marker":"`+e.marker+`"}`)
	}
	until(t, ctx, shownWithin, "the last allowed event", shown("m-player-2"))
	es := entries(t, ctx)
	got := make([]string, 0, len(es))
	for _, e := range es {
		got = append(got, e.Topic)
	}
	if strings.Join(got, " ") != "player.2 ads player.1" {
		t.Errorf("the page shows events of the topics %q, want player.2, ads and player.1 (newest first)", got)
	}

	t.Log("step: a topic the token allows, asked for")
	setInput(t, ctx, "topics", "ads")
	until(t, ctx, waitFor, "state open", stateIs("open"))
	until(t, ctx, waitFor, "one listener", `document.querySelector('#listeners').textContent === '1'`)
	postSigned(t, c, svc, producer, "player.3", `{"marker":"m-player-3"}`)
	postSigned(t, c, svc, producer, "ads", `{"marker":"m-ads-2"}`)
	until(t, ctx, shownWithin, "the ads event", shown("m-ads-2"))
	if es := entries(t, ctx); strings.Contains(fmt.Sprint(es), "m-player-3") {
		t.Errorf("the page shows a player event while listening to ads: %+v", es)
	}

	t.Log("step: a topic the token does not allow")
	setInput(t, ctx, "topics", "video")
	until(t, ctx, waitFor, "refused", stateIs("refused")+" && "+problemShows("HTTP 403", `does not allow listening to "video"`))

	if errs := console.Errors(); len(errs) > 0 {
		for _, e := range errs {
			if !strings.Contains(e, "403") { // the refused request, logged by the browser
				t.Errorf("console error: %s", e)
			}
		}
	}
}
