package app_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"
)

// TestJWTJWKSRefreshEndsWithTheService: once Run has returned, nothing of
// the JWKS is left running: the goroutine that refreshed the set every few
// minutes used to outlive the service. Not parallel: goleak compares the
// goroutines before and after.
func TestJWTJWKSRefreshEndsWithTheService(t *testing.T) {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	set := `{"keys":[{"kid":"k","kty":"OKP","crv":"Ed25519","x":"` + base64.RawURLEncoding.EncodeToString(pub) + `"}]}`
	var fetches atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(set))
	}))
	defer srv.Close()
	before := goleak.IgnoreCurrent()
	addr, stop, logs := runApp(t, []string{"-port", "127.0.0.1:0", "-log-format", "json", "-shutdown-timeout", "5s",
		"-jwt-jwks-url", srv.URL}, noEnv)
	if addr == "" || fetches.Load() != 1 {
		t.Fatalf("the service at %q fetched the set %d times, want once", addr, fetches.Load())
	}
	if err := stop(); err != nil {
		t.Fatalf("Run: %v\n%s", err, logs)
	}
	goleak.VerifyNone(t, before,
		// fasthttp's, as in TestMain: they hold nothing of the service.
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"))
}
