package app_test

// Listeners with signed tokens, through the running service: what they
// receive, their patterns, the end of their stream at the token's expiry,
// the per-subject limit, and the logs.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/client"
)

// TestJWTListenerReceivesWhatItsTokenAllows: a listener that names no topic
// receives what its token allows, every topic for ">"; one that names
// topics receives those; each is told in its greeting what the token
// allows and until when; none receives another topic's events.
func TestJWTListenerReceivesWhatItsTokenAllows(t *testing.T) {
	t.Parallel()
	a := startAuthApp(t, "-jwt-secret", jwtSecret)
	c := grantClaims("reader", time.Hour, nil, []string{"player.*", "ads"})
	exp := time.Unix(c["exp"].(int64), 0).UTC().Format(time.RFC3339)
	tok := hs256(t, c)
	byCookie := a.listen(t, "", cookie(tok))
	byBearer := a.listen(t, "topic=player.*", bearer(tok))
	byQuery := a.listen(t, "topic=ads", inQuery(tok))
	for name, l := range map[string]*sse{"cookie": byCookie, "bearer": byBearer, "query": byQuery} {
		if got, want := l.comment("allowed "), "allowed player.*, ads; expires "+exp; got != want {
			t.Errorf("%s: greeting %q, want the comment %q", name, l.greeting, want)
		}
	}
	everything := a.listen(t, "", bearer(hs256(t, grantClaims("all", time.Hour, nil, []string{">"}))))

	producer := bearer(hs256(t, grantClaims("producer", time.Hour, []string{">"}, nil)))
	for n, topic := range []string{"player.1", "video", "ads", "player.1.x", "", "player.2", "ads.x"} {
		a.mustPublish(t, topic, fmt.Sprintf(`{"n":%d}`, n), producer)
	}
	byCookie.expect(t, "no topic asked", `player.1 {"n":0}`, `ads {"n":2}`, `player.2 {"n":5}`)
	byBearer.expect(t, "player.*", `player.1 {"n":0}`, `player.2 {"n":5}`)
	byQuery.expect(t, "ads", `ads {"n":2}`)
	everything.expect(t, ">", `player.1 {"n":0}`, `video {"n":1}`, `ads {"n":2}`, `player.1.x {"n":3}`,
		`default {"n":4}`, `player.2 {"n":5}`, `ads.x {"n":6}`)
	// Nothing else came between: one more event, the next thing each gets.
	a.mustPublish(t, "ads", `{"n":7}`, producer)
	byCookie.expect(t, "no topic asked", `ads {"n":7}`)
	byQuery.expect(t, "ads", `ads {"n":7}`)
	byBearer.quiet(t, "player.*", 200*time.Millisecond)
}

// TestJWTPatternGrantFollowsNewTopicsAndResumes: a listener whose token
// grants a pattern, and that names no topic, receives in order the events
// of topics created after it connected, and nothing else; reconnecting with
// its last event id and the same token (now as a cookie), it receives what
// it missed, with no gap and no duplicate.
func TestJWTPatternGrantFollowsNewTopicsAndResumes(t *testing.T) {
	t.Parallel()
	a := startAuthApp(t, "-jwt-secret", jwtSecret, "-heartbeat", "1h")
	tok := hs256(t, grantClaims("follower", time.Hour, nil, []string{"match.*"}))
	producer := bearer(hs256(t, grantClaims("producer", time.Hour, []string{">"}, nil)))
	l := a.listen(t, "", bearer(tok))
	for n, topic := range []string{"match.a", "other", "match.b", "match.a.deep", "match.c"} {
		a.mustPublish(t, topic, fmt.Sprintf(`{"n":%d}`, n), producer)
	}
	got := l.expect(t, "live", `match.a {"n":0}`, `match.b {"n":2}`, `match.c {"n":4}`)
	last := got[1].ID // as if it had missed match.c
	l.close()
	for n, topic := range []string{"match.d", "other", "match.e"} {
		a.mustPublish(t, topic, fmt.Sprintf(`{"n":%d}`, 5+n), producer)
	}
	again := a.listen(t, "", cookie(tok), "Last-Event-ID", last)
	again.expect(t, "resumed", `match.c {"n":4}`, `match.d {"n":5}`, `match.e {"n":7}`)
	a.mustPublish(t, "match.f", `{"n":8}`, producer)
	again.expect(t, "resumed, live", `match.f {"n":8}`)
}

// TestJWTPatternGrantLagIsCountedExactly: a listener whose token grants a
// pattern and that stops reading falls behind the buffer; it is then told,
// in gap events, exactly how many of its topics' events it missed (topics
// created after it connected included), never other topics' events.
func TestJWTPatternGrantLagIsCountedExactly(t *testing.T) {
	t.Parallel()
	const events, topics = 300, 3
	a := startAuthApp(t, "-jwt-secret", jwtSecret, "-buffer", "16", "-write-timeout", "1m", "-heartbeat", "1h")
	tok := hs256(t, grantClaims("laggard", time.Hour, nil, []string{"mine.*"}))
	producer := bearer(hs256(t, grantClaims("producer", time.Hour, []string{">"}, nil)))

	// A raw connection with a small receive buffer, not read until the
	// producer is done: the listener falls behind.
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	conn, err := d.Dial("tcp", a.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Minute))
	fmt.Fprintf(conn, "GET /events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", tok)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("GET /events: %v", err)
	}
	// Closed after the connection (deferred above): closing the body of an
	// endless stream first would read it to the deadline.
	t.Cleanup(func() { _ = resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /events: %s", resp.Status)
	}
	a.waitHealth(t, "the listener registered", func(h healthOf) bool { return h.Listeners == 1 })
	pad := strings.Repeat("x", 32<<10)
	for n := range events {
		a.mustPublish(t, fmt.Sprintf("mine.%d", n%topics), fmt.Sprintf(`{"n":%d,"pad":%q}`, n, pad), producer)
		a.mustPublish(t, "other", fmt.Sprintf(`{"other":%d,"pad":%q}`, n, pad), producer)
	}
	// Misses are counted per topic, and told before the next event of that
	// topic: a gap says how many of the following event's topic were missed
	// since that topic's previous event (topic mine.k has the events k,
	// k+3, ...).
	r := client.NewReader(resp.Body)
	var next [topics]int // per topic, the index of the next event expected
	gaps, pending := 0, -1
	for done := 0; done < topics; {
		ev, err := r.Next()
		if err != nil {
			t.Fatalf("after %v: %v", next, err)
		}
		if ev.Gap {
			if ev.Missed == nil || *ev.Missed < 1 || pending >= 0 {
				t.Fatalf("gap event %s (pending %d)", ev.Data, pending)
			}
			pending = int(*ev.Missed)
			gaps++
			continue
		}
		var e struct{ N *int }
		if err := json.Unmarshal(ev.Data, &e); err != nil || e.N == nil {
			t.Fatalf("event on %q %.40q: not one of its topics' events", ev.Topic, ev.Data)
		}
		k, i := *e.N%topics, *e.N/topics
		if ev.Topic != fmt.Sprintf("mine.%d", k) {
			t.Fatalf("event %d on topic %q", *e.N, ev.Topic)
		}
		if want := next[k] + max(pending, 0); i != want {
			t.Fatalf("topic mine.%d: got its event %d, want %d (gap %d, after %d gaps)", k, i, want, pending, gaps)
		}
		pending = -1
		next[k] = i + 1
		if next[k] == (events-k+topics-1)/topics {
			done++
		}
	}
	if gaps == 0 {
		t.Fatal("the listener never lagged: the test did not test anything")
	}
}

// TestJWTStreamEndsAtExpiry: a listener's stream ends cleanly, with a retry
// hint, when its token expires (within a few seconds of "exp"), counted as
// "expired" in /health; a listener whose token lasts longer stays; once
// past the leeway, the expired token is refused.
func TestJWTStreamEndsAtExpiry(t *testing.T) {
	t.Parallel()
	a := startAuthApp(t, "-jwt-secret", jwtSecret)
	c := grantClaims("short-lived", time.Hour, []string{"t.*"}, []string{"t.*"})
	expUnix := time.Now().Add(3 * time.Second).Unix()
	c["exp"] = expUnix
	exp := time.Unix(expUnix, 0)
	tok := hs256(t, c)
	l := a.listen(t, "", bearer(tok))
	if got, want := l.comment("allowed "), "allowed t.*; expires "+exp.UTC().Format(time.RFC3339); got != want {
		t.Errorf("greeting %q, want the comment %q", l.greeting, want)
	}
	long := a.listen(t, "", bearer(hs256(t, grantClaims("long-lived", time.Hour, nil, []string{"t.*"}))))
	a.mustPublish(t, "t.a", `{"n":1}`, bearer(tok))
	l.expect(t, "short-lived", `t.a {"n":1}`)

	ended := l.waitEnd(t, wait)
	if ended.Before(exp.Add(-50*time.Millisecond)) || ended.After(exp.Add(3*time.Second)) {
		t.Errorf("the stream ended at %v, %v from the token's exp: want at exp, within a few seconds",
			ended.Format(time.StampMilli), ended.Sub(exp))
	}
	if !l.retrySet || l.retry <= 0 {
		t.Errorf("the stream ended without a retry hint")
	}
	a.waitHealth(t, "one stream ended as expired", func(h healthOf) bool { return h.Ended["expired"] == 1 && h.Listeners == 1 })

	// The other listener is still served.
	a.mustPublish(t, "t.b", `{"n":2}`, bearer(hs256(t, grantClaims("producer", time.Hour, []string{"t.*"}, nil))))
	long.expect(t, "long-lived", `t.a {"n":1}`, `t.b {"n":2}`)

	// Past the leeway (2 s by default), the token is refused.
	time.Sleep(time.Until(exp.Add(2*time.Second + 100*time.Millisecond)))
	const desc = "jwtauth: token expired"
	checkRefused(t, "GET with the expired token", a.do(t, http.MethodGet, "/events", "", bearer(tok)),
		http.StatusUnauthorized, "invalid token: "+desc, invalidToken(desc))
	checkRefused(t, "POST with the expired token", a.publish(t, "t.a", `{"n":3}`, bearer(tok)),
		http.StatusUnauthorized, "invalid token: "+desc, invalidToken(desc))
}

// TestJWTListenersPerSubject: with -max-listeners-per-subject 2, the third
// listener whose token has the same subject (whichever token, wherever it
// is sent) is turned away with 200, a comment saying why and a retry hint;
// other subjects are not affected; when one of the two leaves, the subject
// may listen again.
func TestJWTListenersPerSubject(t *testing.T) {
	t.Parallel()
	a := startAuthApp(t, "-jwt-secret", jwtSecret, "-max-listeners-per-subject", "2")
	alice := func(jti string) string {
		c := grantClaims("alice", time.Hour, nil, []string{">"})
		c["jti"] = jti // another token, the same subject
		return hs256(t, c)
	}
	first := a.listen(t, "", bearer(alice("1")))
	second := a.listen(t, "topic=x", cookie(alice("2")))
	third := a.listen(t, "", inQuery(alice("3")))
	if len(third.greeting) != 2 || third.greeting[0] != ": too many listeners for this token's subject" ||
		!strings.HasPrefix(third.greeting[1], "retry: ") {
		t.Errorf("the third listener of a subject got %q, want the comment and a retry hint", third.greeting)
	}
	third.waitEnd(t, wait)
	bob := a.listen(t, "", bearer(hs256(t, grantClaims("bob", time.Hour, nil, []string{">"}))))
	if len(bob.greeting) == 0 || bob.greeting[0] != ": connected" {
		t.Errorf("another subject's listener got %q, want a stream", bob.greeting)
	}
	a.mustPublish(t, "x", `{"n":1}`, bearer(hs256(t, grantClaims("producer", time.Hour, []string{">"}, nil))))
	for name, l := range map[string]*sse{"alice 1": first, "alice 2": second, "bob": bob} {
		l.expect(t, name, `x {"n":1}`)
	}
	if h := a.health(t); h.TurnedAway["subject_limit"] != 1 || h.Listeners != 3 {
		t.Errorf("/health: %d turned away for their subject, %d listeners; want 1 and 3", h.TurnedAway["subject_limit"], h.Listeners)
	}

	// One of alice's listeners leaves: alice may listen again.
	first.close()
	poll(t, func() error {
		l := a.listen(t, "", bearer(alice("4")))
		defer l.close()
		if len(l.greeting) == 0 || l.greeting[0] != ": connected" {
			return fmt.Errorf("alice's listener got %q", l.greeting)
		}
		return nil
	})
}

// TestJWTTokensNeverLogged: at debug level, the log holds the subjects of
// the tokens of listeners, and never a token, a part of one, nor the
// secret, whatever the requests (valid and invalid tokens, in every place,
// a request head fasthttp cannot parse).
func TestJWTTokensNeverLogged(t *testing.T) {
	t.Parallel()
	a := startAuthApp(t, "-jwt-secret", jwtSecret, "-log-level", "debug", "-listen-token", "static-listen-secret")
	listenTok := hs256(t, grantClaims("listener-sub-31", time.Hour, nil, []string{"log.*"}))
	pubTok := hs256(t, grantClaims("producer-sub-32", time.Hour, []string{"log.*"}, nil))
	expired := hs256(t, grantClaims("expired-sub-33", -time.Hour, []string{">"}, []string{">"}))
	forged := mint(t, jwt.SigningMethodHS256, []byte("another-secret-0123456789-abcdef"), grantClaims("forged-sub", time.Hour, []string{">"}, []string{">"}))
	none := unsigned(t, grantClaims("none-sub", time.Hour, []string{">"}, []string{">"}))
	tokens := []string{listenTok, pubTok, expired, forged, none}

	byBearer := a.listen(t, "", bearer(listenTok))
	byCookie := a.listen(t, "topic=log.a", cookie(listenTok))
	byQuery := a.listen(t, "", inQuery(listenTok))
	a.mustPublish(t, "log.a", `{"n":1}`, bearer(pubTok))
	for _, l := range []*sse{byBearer, byCookie, byQuery} {
		l.expect(t, "listener", `log.a {"n":1}`)
	}
	a.publish(t, "other", `{"n":2}`, bearer(pubTok)) // 403
	for _, bad := range []string{expired, forged, none} {
		a.publish(t, "log.a", `{"n":3}`, bearer(bad))
		for _, cred := range []credential{bearer(bad), cookie(bad), inQuery(bad)} {
			a.do(t, http.MethodGet, "/events", "", cred)
		}
	}
	a.do(t, http.MethodGet, "/events?topic=other", "", bearer(listenTok)) // 403
	// A request head fasthttp cannot parse: its own log quotes it.
	for _, tok := range []string{listenTok, "static-listen-secret"} {
		rawRequest(t, a.addr, "GET /events?token="+tok+" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+tok+
			"\r\nCookie: dispatcher_token="+tok+"\r\nContent-Length: x\r\n\r\n")
	}
	byBearer.close()
	byCookie.close()
	if err := a.stop(); err != nil {
		t.Fatal(err)
	}

	logs := a.logs.String()
	for _, want := range []string{`"level":"DEBUG"`, `"msg":"listener connected"`, `"subject":"listener-sub-31"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("the debug log lacks %s", want)
		}
	}
	secrets := make([]string, 0, 2+4*len(tokens))
	secrets = append(secrets, jwtSecret, "static-listen-secret")
	for _, tok := range tokens {
		secrets = append(secrets, tok)
		secrets = append(secrets, strings.Split(tok, ".")...)
	}
	for _, s := range secrets {
		if len(s) >= 8 && strings.Contains(logs, s) {
			t.Errorf("the log holds %q (a token, a part of one, or a secret)", s)
		}
	}
	if t.Failed() {
		t.Logf("the log:\n%s", logs)
	}
}

// rawRequest writes req on a new connection and reads the answer until the
// service closes the connection.
func rawRequest(t *testing.T, addr, req string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(wait))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, c)
}
