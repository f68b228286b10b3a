package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Tokens is a set of accepted tokens. It is immutable once parsed and safe
// for concurrent use. The nil *Tokens, like an empty set, is disabled and
// matches nothing.
//
// Only the tokens' SHA-256 digests are kept: the secrets themselves are not
// held in memory after parsing, and a Tokens value prints nothing secret.
type Tokens struct {
	digests [][sha256.Size]byte
}

// ParseTokens parses a comma-separated list of tokens, as given on the
// command line ("new-secret,old-secret"). Spaces around items are ignored.
// An empty (or all-blank) value gives a disabled set and no error.
//
// An empty item ("a,,b", a trailing comma), an item with whitespace or a
// control character inside, or an item that is not valid UTF-8 yields an
// error wrapping [ErrInvalidToken] naming the item's position (from 1) and
// the byte offset of the offending character, but not the token, so that the
// error can be logged. Duplicates are accepted and kept once.
func ParseTokens(v string) (*Tokens, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return &Tokens{}, nil
	}
	items := strings.Split(v, ",")
	t := &Tokens{digests: make([][sha256.Size]byte, 0, len(items))}
	seen := make(map[[sha256.Size]byte]bool, len(items))
	for i, item := range items {
		item = strings.TrimSpace(item)
		if item == "" {
			return nil, fmt.Errorf("%w: item %d: empty", ErrInvalidToken, i+1)
		}
		if at, what := badRune(item); at >= 0 {
			return nil, fmt.Errorf("%w: item %d: %s at byte %d", ErrInvalidToken, i+1, what, at)
		}
		d := sha256.Sum256([]byte(item))
		if !seen[d] {
			seen[d] = true
			t.digests = append(t.digests, d)
		}
	}
	return t, nil
}

// badRune returns the offset of the first character a token may not hold,
// and what it is, or -1.
func badRune(s string) (at int, what string) {
	for i, r := range s {
		switch {
		case r == utf8.RuneError:
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				return i, "invalid UTF-8"
			}
		case unicode.IsSpace(r):
			return i, "whitespace"
		case unicode.IsControl(r):
			return i, "control character"
		}
	}
	return -1, ""
}

// Enabled reports whether the set holds at least one token, that is whether
// the resource it guards requires one.
func (t *Tokens) Enabled() bool { return t != nil && len(t.digests) > 0 }

// Len returns the number of distinct tokens in the set.
func (t *Tokens) Len() int {
	if t == nil {
		return 0
	}
	return len(t.digests)
}

// Match reports whether candidate is one of the tokens. A disabled set
// matches nothing: callers that leave a resource open when no token is
// configured test [Tokens.Enabled] first.
//
// The time Match takes depends only on the candidate's length (through its
// SHA-256 digest) and on the number of tokens: the candidate's digest is
// compared in constant time with every token's digest, all of them, whatever
// matched. It does not allocate and does not keep candidate.
func (t *Tokens) Match(candidate []byte) bool {
	if t == nil {
		return false
	}
	sum := sha256.Sum256(candidate)
	found := 0
	for i := range t.digests {
		found |= subtle.ConstantTimeCompare(sum[:], t.digests[i][:])
	}
	return found == 1
}

// String returns a description that shows neither the tokens nor their
// digests (which would let a weak token be guessed offline), so that a
// Tokens value logged or printed by mistake gives nothing away.
func (t Tokens) String() string {
	return fmt.Sprintf("auth.Tokens{%d token(s)}", len(t.digests))
}

// GoString is String, for the %#v verb.
func (t Tokens) GoString() string { return t.String() }
