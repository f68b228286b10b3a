package jwtauth

// JWKSRefreshes returns the number of successful JWKS fetches.
func (v *Verifier) JWKSRefreshes() uint64 { return v.jwks.refreshes.Load() }

// KeyGeneration returns the generation of the JWKS's keys.
func (v *Verifier) KeyGeneration() uint64 { return v.jwks.gen.Load() }
