// Package topic is the naming of the service's topics and topic patterns.
//
// A topic is 1 to 64 bytes of dot-separated, non-empty segments of
// A-Z a-z 0-9 _ - ("player", "video.play"): topics map to NATS subject
// tokens. A pattern is a topic where a segment may be "*" (exactly one
// segment) and the last segment may be ">" (one or more trailing segments),
// as in NATS subjects: "player.*" matches "player.a"; "player.>" matches
// "player.a" and "player.a.b"; ">" matches every topic.
//
// Listeners ask for topics or patterns; signed tokens grant them
// (Covers says whether granted patterns cover a requested one).
//
// Every function is safe for concurrent use and does not allocate, but
// Covers.
package topic

import "strings"

// MaxLen is the longest topic or topic pattern, in bytes.
const MaxLen = 64

// Wildcard segments of a topic pattern, as in NATS subjects.
const (
	// AnySegment matches exactly one segment: "player.*" matches
	// "player.a", not "player" nor "player.a.b".
	AnySegment = "*"
	// AnyTail, as the last segment, matches one or more segments:
	// "player.>" matches "player.a" and "player.a.b", not "player".
	AnyTail = ">"
)

// ValidPattern reports whether p is a valid topic pattern: 1 to
// [MaxLen] bytes, dot-separated non-empty segments, each either a
// run of A-Z a-z 0-9 _ - or [AnySegment], the last one possibly [AnyTail].
// Every valid topic name is a valid pattern that matches only itself.
//
// ValidPattern is safe for concurrent use and does not allocate.
func ValidPattern(p string) bool { return valid(p, true) }

// Valid reports whether t is a valid topic name: a pattern without
// wildcards.
func Valid(t string) bool { return valid(t, false) }

// IsPattern reports whether a valid pattern has wildcards (a valid pattern
// without any is a topic name, which matches only itself).
func IsPattern(p string) bool {
	for {
		seg, rest, more := cutSegment(p)
		if seg == AnySegment || seg == AnyTail {
			return true
		}
		if !more {
			return false
		}
		p = rest
	}
}

func valid(s string, wildcards bool) bool {
	if s == "" || len(s) > MaxLen {
		return false
	}
	for {
		seg, rest, more := cutSegment(s)
		switch {
		case wildcards && seg == AnySegment:
		case wildcards && seg == AnyTail:
			if more {
				return false // ">" only as the last segment
			}
		case seg == "":
			return false
		default:
			for i := range len(seg) {
				if !segmentChar(seg[i]) {
					return false
				}
			}
		}
		if !more {
			return true
		}
		s = rest
	}
}

func segmentChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-'
}

// cutSegment splits s at its first dot: the first segment, what follows the
// dot, and whether there was a dot.
func cutSegment(s string) (seg, rest string, more bool) {
	if i := strings.IndexByte(s, '.'); i >= 0 {
		return s[:i], s[i+1:], true
	}
	return s, "", false
}

// Match reports whether pattern matches topic: pattern is a valid pattern
// ([ValidPattern]), topic a valid topic name (no wildcards), and each
// segment of the pattern equals the topic's segment at the same place, or
// is [AnySegment], or is a final [AnyTail] that stands for the one or more
// segments the topic has left. "player.*" matches "player.a";
// "player.>" matches "player.a" and "player.a.b"; ">" matches every topic.
// An invalid pattern or topic matches nothing.
//
// Match is safe for concurrent use and does not allocate.
func Match(pattern, topic string) bool {
	return ValidPattern(pattern) && Valid(topic) && match(pattern, topic)
}

// match is Match for a valid pattern and a valid topic.
func match(pattern, topic string) bool {
	for {
		pseg, prest, pmore := cutSegment(pattern)
		if pseg == AnyTail {
			return true // the topic has at least one segment left
		}
		tseg, trest, tmore := cutSegment(topic)
		if pseg != AnySegment && pseg != tseg || pmore != tmore {
			return false
		}
		if !pmore {
			return true
		}
		pattern, topic = prest, trest
	}
}

// Covers reports whether every topic that the valid pattern req matches is
// matched by at least one of the valid patterns in granted. It allocates a
// little (a slice per segment of req), and takes time proportional to the
// number of granted patterns times the number of segments of the longest.
func Covers(granted []string, req string) bool {
	for _, g := range granted {
		if g == req || g == AnyTail {
			return true // the common cases, without allocating
		}
	}
	return covers(granted, req)
}

// covers is Covers without its shortcuts.
//
// It considers topics of any length: the service's 64-byte limit on topic
// names is ignored, which can only make covers refuse a request that the
// limit would have let through (granted "*", "*.*", ... up to 32 segments
// does not cover ">"), never the other way round.
//
// covers recurses on the rest of patterns: req and each of granted are what
// remains of a pattern once its first segments have been consumed against
// the same topic segments ("" once a pattern has been consumed whole, which
// matches only the end of the topic). Segment by segment:
//   - a granted ">" covers whatever req has left, as long as req requires
//     one more segment (req is not "");
//   - when req is "", the topic ends here: a granted pattern that ends here
//     too covers it;
//   - a literal segment of req is matched by the granted patterns whose
//     segment is that literal or "*";
//   - a "*" of req is any segment, including values no granted pattern
//     names: only the granted "*" match them all, and what they cover for
//     such a value they cover for any other (more granted patterns match a
//     literal, none fewer);
//   - a final ">" of req is "*" followed by the end of the topic or by
//     another ">": both must be covered by the granted patterns whose
//     segment is "*". The recursion ends because each step consumes a
//     segment of every granted pattern left.
func covers(granted []string, req string) bool {
	if req == "" {
		for _, g := range granted {
			if g == "" {
				return true
			}
		}
		return false
	}
	for _, g := range granted {
		if g == AnyTail {
			return true
		}
	}
	rseg, rrest, _ := cutSegment(req)
	next := make([]string, 0, len(granted))
	for _, g := range granted {
		if g == "" {
			continue
		}
		gseg, grest, _ := cutSegment(g)
		if gseg == AnySegment || gseg == rseg {
			next = append(next, grest)
		}
	}
	if len(next) == 0 {
		return false
	}
	if rseg == AnyTail {
		return covers(next, "") && covers(next, AnyTail)
	}
	return covers(next, rrest)
}
