package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/netip"
	"sync"

	"github.com/valyala/fasthttp"
)

// tokenSet holds the accepted tokens of one kind (publish or listen) as
// SHA-256 digests. The zero value accepts every request.
type tokenSet struct {
	digests [][sha256.Size]byte
}

func newTokenSet(tokens []string) tokenSet {
	var t tokenSet
	for _, tok := range tokens {
		t.digests = append(t.digests, sha256.Sum256([]byte(tok)))
	}
	return t
}

// match reports whether candidate is one of the tokens. It compares digests
// with every token, always all of them, so its time depends neither on
// where the values differ nor on which token matched.
func (t *tokenSet) match(candidate []byte) bool {
	got := sha256.Sum256(candidate)
	ok := 0
	for i := range t.digests {
		ok |= subtle.ConstantTimeCompare(got[:], t.digests[i][:])
	}
	return ok == 1
}

// allowsBearer reports whether an Authorization header value carries one of
// the tokens ("Bearer <token>", scheme in any case).
func (t *tokenSet) allowsBearer(authorization []byte) bool {
	if len(t.digests) == 0 {
		return true
	}
	tok, ok := bearer(authorization)
	return ok && t.match(tok)
}

// allows reports whether a listener's request carries one of the tokens: as
// a bearer token, else a "token" query parameter, else a "dispatcher_token"
// cookie (EventSource cannot send headers).
func (t *tokenSet) allows(ctx *fasthttp.RequestCtx) bool {
	if len(t.digests) == 0 {
		return true
	}
	if tok, ok := bearer(ctx.Request.Header.Peek(fasthttp.HeaderAuthorization)); ok {
		return t.match(tok)
	}
	if tok := ctx.QueryArgs().Peek("token"); len(tok) > 0 {
		return t.match(tok)
	}
	return t.match(ctx.Request.Header.Cookie("dispatcher_token"))
}

func bearer(authorization []byte) ([]byte, bool) {
	const prefix = "Bearer "
	if len(authorization) < len(prefix) || !asciiEqualFold(authorization[:len(prefix)], prefix) {
		return nil, false
	}
	return trimSpace(authorization[len(prefix):]), true
}

// ipCounter bounds concurrent listeners per client address. The zero value
// (limit 0) admits everyone.
type ipCounter struct {
	counts map[netip.Addr]int
	mu     sync.Mutex
	limit  int
}

func (c *ipCounter) acquire(ip netip.Addr) bool {
	if c.limit <= 0 {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts[ip] >= c.limit {
		return false
	}
	if c.counts == nil {
		c.counts = make(map[netip.Addr]int)
	}
	c.counts[ip]++
	return true
}

func (c *ipCounter) release(ip netip.Addr) {
	if c.limit <= 0 {
		return
	}
	c.mu.Lock()
	if c.counts[ip]--; c.counts[ip] <= 0 {
		delete(c.counts, ip)
	}
	c.mu.Unlock()
}
