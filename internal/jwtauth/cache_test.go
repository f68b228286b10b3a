package jwtauth_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/jwtauth"
)

// stats fails unless the verifier's cache counted hits, misses and
// entries.
func stats(tb testing.TB, v *jwtauth.Verifier, hits, misses uint64, entries int) {
	tb.Helper()
	h, m, e := v.CacheStats()
	if h != hits || m != misses || e != entries {
		tb.Fatalf("cache: %d hits, %d misses, %d entries; want %d, %d, %d", h, m, e, hits, misses, entries)
	}
}

func hsToken(tb testing.TB, sub string, exp time.Time) string {
	tb.Helper()
	c := jwt.MapClaims{"sub": sub, "pillarbox": map[string]any{"subscribe": []string{">"}}}
	if !exp.IsZero() {
		c["exp"] = exp.Unix()
	}
	return sign(tb, jwt.SigningMethodHS256, secret, c)
}

// A cached entry lasts until the token's exp; past it the token is checked
// again, accepted within the leeway, then refused.
func TestCacheUntilExp(t *testing.T) {
	t.Parallel()
	clock := newClock()
	v := newVerifier(t, jwtauth.Config{Secret: secret}, clock)
	tok := hsToken(t, "a", t0.Add(30*time.Second))

	first := accept(t, v, tok)
	stats(t, v, 0, 1, 1)
	if again := accept(t, v, tok); again != first {
		t.Error("a cache hit returns another grant")
	}
	stats(t, v, 1, 1, 1)

	clock.Advance(29 * time.Second)
	if accept(t, v, tok) != first {
		t.Error("not a hit a second before exp")
	}
	stats(t, v, 2, 1, 1)

	clock.Advance(time.Second) // at exp: verified again, within the leeway
	if accept(t, v, tok) == first {
		t.Error("a hit at exp")
	}
	stats(t, v, 2, 2, 1)
	accept(t, v, tok) // still within the leeway, and not cached past exp
	stats(t, v, 2, 3, 1)

	clock.Advance(jwtauth.DefaultLeeway)
	refuse(t, v, tok, jwtauth.ErrExpired)
	stats(t, v, 2, 4, 1)
}

// An entry lasts at most the cache's TTL, whatever the token's exp.
func TestCacheTTL(t *testing.T) {
	t.Parallel()
	clock := newClock()
	v := newVerifier(t, jwtauth.Config{Secret: secret, CacheTTL: time.Minute}, clock)
	long := hsToken(t, "long", t0.Add(time.Hour))
	forever := hsToken(t, "forever", time.Time{})

	accept(t, v, long)
	accept(t, v, forever)
	stats(t, v, 0, 2, 2)
	clock.Advance(time.Minute - time.Nanosecond)
	accept(t, v, long)
	accept(t, v, forever)
	stats(t, v, 2, 2, 2)
	clock.Advance(time.Nanosecond)
	accept(t, v, long)
	accept(t, v, forever)
	stats(t, v, 2, 4, 2)
	accept(t, v, long) // cached again for another minute
	stats(t, v, 3, 4, 2)
}

// Refused tokens are not cached: each costs a full check, and none can
// evict a valid token.
func TestCacheOnlyHoldsValidTokens(t *testing.T) {
	t.Parallel()
	v := newVerifier(t, jwtauth.Config{Secret: secret, CacheSize: 4}, nil)
	valid := hsToken(t, "valid", time.Time{})
	accept(t, v, valid)
	for i := range 10 {
		refuse(t, v, hsToken(t, fmt.Sprint(i), t0.Add(-time.Hour)), jwtauth.ErrExpired)
		refuse(t, v, sign(t, jwt.SigningMethodHS256, []byte("wrong secret wrong secret wrong secret"), claims()), jwtauth.ErrInvalidSignature)
	}
	stats(t, v, 0, 21, 1)
	accept(t, v, valid)
	stats(t, v, 1, 21, 1)
}

// The cache holds at most CacheSize entries, evicting the oldest.
func TestCacheBound(t *testing.T) {
	t.Parallel()
	for _, size := range []int{1, 8, 255, 256, 1000} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			t.Parallel()
			v := newVerifier(t, jwtauth.Config{Secret: secret, CacheSize: size}, nil)
			n := 3*size + 5
			tokens := make([]string, n)
			for i := range tokens {
				tokens[i] = hsToken(t, fmt.Sprint("subject-", i), time.Time{})
				accept(t, v, tokens[i])
			}
			hits, misses, entries := v.CacheStats()
			if hits != 0 || misses != uint64(n) || entries > size || entries < size*15/16 {
				t.Fatalf("after %d tokens: %d hits, %d misses, %d entries (bound %d)", n, hits, misses, entries, size)
			}
			// The last token is cached; the first was evicted long ago.
			accept(t, v, tokens[n-1])
			accept(t, v, tokens[0])
			if h, m, _ := v.CacheStats(); h != 1 || m != uint64(n)+1 {
				t.Errorf("last and first again: %d hits, %d misses; want a hit then a miss", h-hits, m-misses)
			}
		})
	}
}

func TestCacheDisabled(t *testing.T) {
	t.Parallel()
	v := newVerifier(t, jwtauth.Config{Secret: secret, CacheSize: -1}, nil)
	tok := hsToken(t, "a", time.Time{})
	first, second := accept(t, v, tok), accept(t, v, tok)
	if first == second {
		t.Error("without a cache, two checks return the same grant")
	}
	stats(t, v, 0, 0, 0)
}

// Many goroutines verify overlapping tokens through a small cache, under
// the race detector.
func TestCacheConcurrent(t *testing.T) {
	t.Parallel()
	clock := newClock()
	v := newVerifier(t, jwtauth.Config{Secret: secret, CacheSize: 16}, clock)
	tokens := make([]string, 40)
	for i := range tokens {
		tokens[i] = hsToken(t, fmt.Sprint("s", i), t0.Add(time.Hour))
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 300 {
				tok := tokens[(i*(w+1))%len(tokens)]
				g, err := v.Verify(tok)
				if err != nil || !g.CanSubscribe("x") {
					t.Errorf("Verify = %v, %v", g, err)
					return
				}
				if i%50 == 0 {
					clock.Advance(time.Second)
				}
			}
		})
	}
	wg.Wait()
	hits, misses, entries := v.CacheStats()
	if hits+misses != 8*300 || entries > 16 {
		t.Errorf("%d hits, %d misses, %d entries", hits, misses, entries)
	}
}

func TestCachedVerifyDoesNotAllocate(t *testing.T) {
	v := newVerifier(t, jwtauth.Config{Secret: secret}, nil)
	tok := sign(t, jwt.SigningMethodHS256, secret, claims())
	accept(t, v, tok)
	if n := testing.AllocsPerRun(100, func() { _, _ = v.Verify(tok) }); n != 0 {
		t.Errorf("a cached Verify allocates %v times", n)
	}
}
