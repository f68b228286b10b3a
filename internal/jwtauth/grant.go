package jwtauth

import (
	"fmt"
	"slices"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/topic"
)

// Grant is what a verified token allows: the topics its holder may publish
// on and subscribe to, as lists of topic patterns.
//
// A Grant is immutable and safe for concurrent use: [Verifier.Verify]
// returns the same *Grant to every caller that presents the same token
// while it is cached, so callers must not modify its fields. The nil
// *Grant grants nothing.
type Grant struct {
	// Expires is the token's "exp", or the zero Time when it has none.
	Expires time.Time
	// Subject is the token's "sub" ("" when it has none), for logs and
	// metrics: who the token was issued to.
	Subject   string
	publish   []string
	subscribe []string
}

// NewGrant returns a Grant for subject with the given publish and subscribe
// patterns, as Verify builds it from a token's claims; it is for the server
// to give the holders of other credentials (a static token) a Grant, and
// for tests. Duplicate patterns are kept once; the slices are copied.
//
// It returns an error wrapping [ErrInvalidPattern] that names the list and
// the position ("publish[1]"), not the pattern, when a pattern is not
// valid ([topic.ValidPattern]).
func NewGrant(subject string, expires time.Time, publish, subscribe []string) (*Grant, error) {
	pub, err := patterns("publish", publish)
	if err != nil {
		return nil, err
	}
	sub, err := patterns("subscribe", subscribe)
	if err != nil {
		return nil, err
	}
	return &Grant{Subject: subject, Expires: expires, publish: pub, subscribe: sub}, nil
}

// patterns validates a list of patterns and returns a copy without
// duplicates (nil for an empty list).
func patterns(list string, ps []string) ([]string, error) {
	var out []string
	for i, p := range ps {
		if !topic.ValidPattern(p) {
			return nil, fmt.Errorf("%w: %s[%d]", ErrInvalidPattern, list, i)
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out, nil
}

// CanPublish reports whether the grant allows publishing on topic: topic
// is a valid topic name (no wildcards) that one of the granted publish
// patterns matches ([Match]). A producer that names no topic publishes on
// the server's default topic, which the grant must then allow by name or
// by a pattern ("default", "*" or ">").
//
// CanPublish is safe for concurrent use and does not allocate.
func (g *Grant) CanPublish(name string) bool {
	if g == nil || !topic.Valid(name) {
		return false
	}
	for _, p := range g.publish {
		if topic.Match(p, name) {
			return true
		}
	}
	return false
}

// CanSubscribe reports whether the grant allows subscribing to
// topicOrPattern: a valid topic name or pattern ([topic.ValidPattern]) every
// topic of which one of the granted subscribe patterns matches. Granted
// "player.>" allows "player.a", "player.*" and "player.a.>"; granted
// "player.*" allows "player.a" and "player.*" but not "player.>" nor
// "player.a.b"; granted "*" allows any single-segment topic. Patterns
// granted together count together: "a.*" and "a.*.>" allow "a.>". An
// invalid topicOrPattern is refused like any other: a server that answers
// 400 to those checks [topic.ValidPattern] first.
//
// CanSubscribe is safe for concurrent use. For a topic name, or a pattern
// granted as such, it does not allocate; for another pattern it allocates
// a little (a slice per segment of the pattern), and takes time
// proportional to the number of granted patterns times the number of
// segments of the longest pattern.
func (g *Grant) CanSubscribe(topicOrPattern string) bool {
	if g == nil || len(g.subscribe) == 0 || !topic.ValidPattern(topicOrPattern) {
		return false
	}
	if topic.Valid(topicOrPattern) {
		// A single topic: one granted pattern must match it.
		for _, p := range g.subscribe {
			if topic.Match(p, topicOrPattern) {
				return true
			}
		}
		return false
	}
	return topic.Covers(g.subscribe, topicOrPattern)
}

// SubscribePatterns returns the granted subscribe patterns, each once, in
// the token's order: what a listener that names no topic is to receive.
// It returns nil when the grant allows no subscription.
//
// The returned slice is a copy that the caller may keep and modify;
// SubscribePatterns allocates it.
func (g *Grant) SubscribePatterns() []string {
	if g == nil {
		return nil
	}
	return slices.Clone(g.subscribe)
}
