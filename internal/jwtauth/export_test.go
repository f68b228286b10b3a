package jwtauth

// CacheStats returns the cache's hits, misses and entries (zeros without a
// cache).
func (v *Verifier) CacheStats() (hits, misses uint64, entries int) {
	if v.cache == nil {
		return 0, 0, 0
	}
	return v.cache.stats()
}

// JWKSRefreshes returns the number of successful JWKS fetches.
func (v *Verifier) JWKSRefreshes() uint64 { return v.jwks.refreshes.Load() }

// KeyGeneration returns the generation of the JWKS's keys.
func (v *Verifier) KeyGeneration() uint64 { return v.generation() }
