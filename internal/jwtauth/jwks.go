package jwtauth

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// jwks is a JWK Set fetched over HTTP: keyfunc's key function over
// jwkset's HTTP storage, whose keys land in a storage that notices when
// a refresh removes or replaces one.
type jwks struct {
	keyfunc   jwt.Keyfunc
	transport *http.Transport
	store     *trackedStore
	gen       atomic.Uint64 // changes when a key is removed or replaced
	refreshes atomic.Uint64 // successful fetches, for tests
}

// newJWKS fetches the set at cfg.JWKSURL and starts its refresh goroutine,
// which runs until ctx is cancelled.
func newJWKS(ctx context.Context, cfg *Config, log *slog.Logger) (*jwks, error) {
	j := &jwks{
		transport: &http.Transport{
			Proxy:                  http.ProxyFromEnvironment,
			DisableKeepAlives:      true, // a fetch every few minutes: no idle connection to keep (or leak)
			TLSHandshakeTimeout:    cfg.JWKSTimeout,
			ResponseHeaderTimeout:  cfg.JWKSTimeout,
			MaxResponseHeaderBytes: 64 << 10,
		},
	}
	j.store = &trackedStore{MemoryJWKSet: jwkset.NewMemoryStorage(), changed: j.changed}
	client := &http.Client{
		Transport: limitedBody{j.transport},
		Timeout:   cfg.JWKSTimeout,
		// A redirect could lead to plain http: a key server answers at
		// the configured address or not at all.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	onError := func(ctx context.Context, err error) {
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			return // Close
		}
		log.Warn("jwtauth: fetching the JWKS failed; the keys already known stay in use", "error", err)
	}
	httpStore, err := jwkset.NewStorageFromHTTP(cfg.JWKSURL, jwkset.HTTPClientStorageOptions{
		Client:                    client,
		Ctx:                       ctx,
		HTTPTimeout:               cfg.JWKSTimeout,
		NoErrorReturnFirstHTTPReq: true,
		RefreshErrorHandler:       onError,
		RefreshInterval:           cfg.JWKSRefresh,
		Storage:                   j.store,
	})
	if err != nil {
		return nil, bad("jwt-jwks-url", "%v", err)
	}
	storage, err := jwkset.NewHTTPClient(jwkset.HTTPClientOptions{
		HTTPURLs: map[string]jwkset.Storage{cfg.JWKSURL: httpStore},
		// Bounds the wait for the limiter and the fetch it allows.
		RateLimitWaitMax:  cfg.JWKSTimeout,
		RefreshUnknownKID: rate.NewLimiter(rate.Every(cfg.JWKSRefreshLimit), 1),
	})
	if err != nil {
		return nil, bad("jwt-jwks-url", "%v", err)
	}
	kf, err := keyfunc.New(keyfunc.Options{
		Ctx:          ctx,
		Storage:      storage,
		UseWhitelist: []jwkset.USE{jwkset.UseSig, ""}, // not "enc"
	})
	if err != nil {
		return nil, bad("jwt-jwks-url", "%v", err)
	}
	j.keyfunc = kf.KeyfuncCtx(ctx)
	return j, nil
}

// close releases what the transport holds; the refresh goroutine ends with
// its context.
func (j *jwks) close() { j.transport.CloseIdleConnections() }

// changed is called by the store after each successful fetch, with whether
// a key of the previous set is gone or different.
func (j *jwks) changed(removed bool) {
	if removed {
		j.gen.Add(1)
	}
	j.refreshes.Add(1)
}

// trackedStore is the in-memory storage of the fetched keys. A refresh
// replaces all keys at once (KeyReplaceAll); trackedStore compares the new
// set with the old and reports whether a key was removed or replaced, so
// that tokens verified with it are no longer taken from the cache.
type trackedStore struct {
	*jwkset.MemoryJWKSet
	changed func(removed bool)
	mu      sync.Mutex // one replacement at a time: periodic and unknown-kid refreshes may race
}

// KeyReplaceAll implements jwkset.Storage.
func (s *trackedStore) KeyReplaceAll(ctx context.Context, given []jwkset.JWK) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, err := s.KeyReadAll(ctx)
	if err != nil {
		return err
	}
	if err := s.MemoryJWKSet.KeyReplaceAll(ctx, given); err != nil {
		return err
	}
	s.changed(removedAny(old, given))
	return nil
}

// removedAny reports whether a key of old is not in now, with the same key
// id and the same key material.
func removedAny(old, now []jwkset.JWK) bool {
	for i := range old {
		kid, key := old[i].Marshal().KID, publicOf(old[i].Key())
		kept := false
		for j := range now {
			if now[j].Marshal().KID == kid && sameKey(key, publicOf(now[j].Key())) {
				kept = true
				break
			}
		}
		if !kept {
			return true
		}
	}
	return false
}

func publicOf(key any) any {
	if k, ok := key.(interface{ Public() crypto.PublicKey }); ok {
		return k.Public()
	}
	return key
}

func sameKey(a, b any) bool {
	if a, ok := a.([]byte); ok {
		b, ok := b.([]byte)
		return ok && bytes.Equal(a, b)
	}
	if a, ok := a.(interface{ Equal(crypto.PublicKey) bool }); ok {
		return a.Equal(b)
	}
	return false
}

// limitedBody is a RoundTripper whose response bodies fail past
// MaxJWKSBytes, so that a huge or endless answer cannot exhaust memory.
type limitedBody struct{ rt http.RoundTripper }

func (l limitedBody) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := l.rt.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &capped{rc: resp.Body, left: MaxJWKSBytes}
	return resp, nil
}

var errTooLarge = fmt.Errorf("JWKS larger than %d bytes", MaxJWKSBytes)

// capped reads at most left bytes of rc, then fails.
type capped struct {
	rc   io.ReadCloser
	left int64
}

func (c *capped) Read(p []byte) (int, error) {
	if c.left <= 0 {
		// One more byte tells a body of exactly the limit from a longer one.
		var one [1]byte
		n, err := c.rc.Read(one[:])
		if n > 0 {
			return 0, errTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.rc.Read(p)
	c.left -= int64(n)
	return n, err
}

func (c *capped) Close() error { return c.rc.Close() }
