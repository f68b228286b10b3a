// Package jwtauth grants access per topic: which topics a producer may
// publish on and which topics (or topic patterns) a listener may subscribe
// to.
//
// Topic patterns follow the NATS subject wildcard rules: a pattern is a
// topic name (1 to 64 characters from A-Z a-z 0-9 . _ -, dots separating
// non-empty segments) where a segment may be "*" (exactly one segment) and
// the last segment may be ">" (one or more trailing segments). See
// [ValidPattern], [Match], [Grant.CanPublish] and [Grant.CanSubscribe].
package jwtauth

import "errors"

// Sentinel errors. Their text, and that of the errors that wrap them, holds
// no pattern.
var (
	// ErrInvalidPattern is returned for a topic pattern that
	// [ValidPattern] refuses. The wrapping error names the list and the
	// position ("subscribe[2]").
	ErrInvalidPattern = errors.New("jwtauth: invalid topic pattern")
)
