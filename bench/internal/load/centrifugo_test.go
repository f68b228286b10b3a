package load

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// fakeCentrifugo speaks what sseload uses of Centrifugo's unidirectional
// SSE transport and HTTP API, as observed on Centrifugo v6: a listener's
// GET /connection/uni_sse?cf_connect={"token":…} gets a blank line, the
// connect reply and then one data block per publication; POST
// /api/publish with X-API-Key takes {"channel":…,"data":…}. It also sends
// a ping ({}) to every listener after every pingEvery publications, so
// that control frames interleave with events, and reports a wrong API key
// in a 200 answer's body, as Centrifugo's default error mode does.
type fakeCentrifugo struct {
	token, apiKey, channel string
	pingEvery              int

	mu        sync.Mutex
	listeners map[chan []byte]struct{}
	published int
}

func (s *fakeCentrifugo) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /connection/uni_sse", s.stream)
	mux.HandleFunc("POST /api/publish", s.publish)
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "{}") })
	return mux
}

func (s *fakeCentrifugo) stream(w http.ResponseWriter, r *http.Request) {
	var connect struct{ Token string }
	if err := json.Unmarshal([]byte(r.URL.Query().Get("cf_connect")), &connect); err != nil || connect.Token != s.token {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "\r\ndata: {\"disconnect\":{\"code\":3500,\"reason\":\"invalid token\"}}\n\n")
		return
	}
	ch := make(chan []byte, 4096)
	s.mu.Lock()
	s.listeners[ch] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ch)
		s.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	f := w.(http.Flusher)
	_, _ = io.WriteString(w, "\r\ndata: {\"connect\":{\"client\":\"c\",\"subs\":{\""+s.channel+"\":{}},\"ping\":25}}\n\n")
	f.Flush()
	for {
		select {
		case frame := <-ch:
			if _, err := w.Write(frame); err != nil {
				return
			}
			f.Flush()
		case <-r.Context().Done():
			return
		}
	}
}

func (s *fakeCentrifugo) publish(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Channel string          `json:"channel"`
		Data    json.RawMessage `json:"data"`
	}
	if r.Header.Get("X-API-Key") != s.apiKey {
		_, _ = io.WriteString(w, `{"error":{"code":401,"message":"unauthorized"}}`)
		return
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Channel != s.channel {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	frame := []byte(`data: {"channel":"` + req.Channel + `","pub":{"data":` + string(req.Data) + "}}\n\n")
	s.mu.Lock()
	s.published++
	if s.pingEvery > 0 && s.published%s.pingEvery == 0 {
		frame = append(frame, "data: {}\n\n"...)
	}
	for ch := range s.listeners {
		ch <- frame
	}
	s.mu.Unlock()
	_, _ = io.WriteString(w, `{"result":{}}`)
}

func startFakeCentrifugo(t *testing.T) (*fakeCentrifugo, string) {
	t.Helper()
	s := &fakeCentrifugo{token: CentrifugoToken("secret", "sseload", "bench"), apiKey: "key", channel: "bench",
		pingEvery: 50, listeners: map[chan []byte]struct{}{}}
	ts := httptest.NewServer(s.handler())
	t.Cleanup(ts.Close)
	return s, ts.URL
}

func TestRunCentrifugoProtocol(t *testing.T) {
	_, url := startFakeCentrifugo(t)
	cfg := testConfig(url)
	cfg.Centrifugo = &Centrifugo{Channel: "bench", APIKey: "key", Token: CentrifugoToken("secret", "sseload", "bench")}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The connect replies and the pings are data blocks, not events: every
	// event counted once, the 300/50 pings of each listener apart.
	checkExactlyOnce(t, rep, 5, 300)
	if got := rep.Load.ControlFrames; got != 5*300/50 {
		t.Fatalf("control frames %d, want %d", got, 5*300/50)
	}
	if rep.Params.Protocol != ProtocolCentrifugo {
		t.Fatalf("protocol %q", rep.Params.Protocol)
	}
}

func TestRunCentrifugoErrors(t *testing.T) {
	_, url := startFakeCentrifugo(t)
	cfg := testConfig(url)
	cfg.Centrifugo = &Centrifugo{Channel: "bench", APIKey: "wrong", Token: CentrifugoToken("secret", "sseload", "bench")}
	cfg.Events = 10
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	// An error reported in a 200 answer's body is a failed POST.
	if l := rep.Load; l.Sent != 0 || l.PostErrors == 0 || l.PostStatus["error-in-body"] != l.PostErrors {
		t.Fatalf("sent %d, errors %d %v", l.Sent, l.PostErrors, l.PostStatus)
	}
	// A listener whose token does not subscribe it never gets a connect
	// reply: it is disconnected, and the run fails to connect.
	cfg.Centrifugo = &Centrifugo{Channel: "bench", APIKey: "key", Token: CentrifugoToken("other secret", "sseload", "bench")}
	cfg.ConnectTimeout = 2e9
	if _, err := Run(context.Background(), cfg); err == nil {
		t.Fatal("listeners with a bad token counted as connected")
	}
	for _, bad := range []Config{{Centrifugo: &Centrifugo{Channel: "c"}, Listeners: 1},
		{Centrifugo: &Centrifugo{Channel: "c"}, Producers: 1}, {Centrifugo: &Centrifugo{}}} {
		bad.Duration = 1
		if err := bad.validate(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
