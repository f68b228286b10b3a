package natsbridge

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/topic"
)

// MaxTopicLen is the longest topic name, in bytes.
const MaxTopicLen = topic.MaxLen

// DefaultTopic is the topic of an event published without one.
const DefaultTopic = "default"

// EventHeader is the message header that carries the event's name.
const EventHeader = "Pillarbox-Event"

// FingerprintHeader is the message header that carries Message.Fingerprint.
const FingerprintHeader = "Pillarbox-Fingerprint"

// maxHeaderValueLen bounds event names and message ids.
const maxHeaderValueLen = 256

// ValidTopic tells whether t is a valid topic name, as [topic.Valid] says:
// dot-separated tokens of ASCII letters, digits, '_' and '-'
// (^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$), at most MaxTopicLen bytes. It does
// not allocate.
func ValidTopic(t string) bool { return topic.Valid(t) }

// validTokens tells whether s is one or more non-empty dot-separated tokens
// of [A-Za-z0-9_-], of any length: a subject prefix, which is not a topic.
func validTokens(s string) bool {
	if s == "" {
		return false
	}
	prevDot := true // a leading dot is an empty first token
	for i := range len(s) {
		c := s[i]
		switch {
		case c == '.':
			if prevDot {
				return false
			}
			prevDot = true
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
			prevDot = false
		default:
			return false
		}
	}
	return !prevDot
}

// Subject returns the subject topic is published on under prefix:
// prefix + "." + topic. It does not validate either.
func Subject(prefix, topic string) string {
	return prefix + "." + topic
}

// TopicOf returns the topic of a subject under prefix, the inverse of
// Subject, and false when subject is not prefix, a dot and a valid topic.
// The returned string shares subject's memory.
func TopicOf(prefix, subject string) (string, bool) {
	if len(subject) <= len(prefix)+1 || subject[len(prefix)] != '.' || !strings.HasPrefix(subject, prefix) {
		return "", false
	}
	topic := subject[len(prefix)+1:]
	return topic, ValidTopic(topic)
}

// EventMsgID is the message id of a single event sent with idempotency key
// key: "e:" + key. Ids of single events and of batch lines (BatchMsgID) live
// in separate namespaces: no key of one names a message of the other.
func EventMsgID(key string) string {
	return "e:" + key
}

// BatchMsgID is the message id of line index (from 0) of a batch sent with
// idempotency key key: "b:" + index + ":" + key. The index comes first, so
// that ids of different keys and lines never collide.
func BatchMsgID(key string, index int) string {
	return "b:" + strconv.Itoa(index) + ":" + key
}

// checkMessage validates what Publish sends: a valid topic (empty means
// DefaultTopic), and an event name and message id that fit in a header (no
// control characters, no surrounding spaces, at most 256 bytes).
func checkMessage(m *Message) error {
	if m.Topic != "" && !ValidTopic(m.Topic) {
		return fmt.Errorf("%w: topic %q", ErrInvalidMessage, m.Topic)
	}
	if !validHeaderValue(m.Event) {
		return fmt.Errorf("%w: event name %q", ErrInvalidMessage, m.Event)
	}
	if !validHeaderValue(m.MsgID) {
		return fmt.Errorf("%w: message id %q", ErrInvalidMessage, m.MsgID)
	}
	if !validHeaderValue(m.Fingerprint) {
		return fmt.Errorf("%w: fingerprint %q", ErrInvalidMessage, m.Fingerprint)
	}
	return nil
}

// validHeaderValue tells whether v survives a NATS header unchanged: no
// control bytes (a line break would end the header), no leading or trailing
// space or tab (header parsing trims them), at most 256 bytes. Empty is valid
// (no header).
func validHeaderValue(v string) bool {
	if len(v) > maxHeaderValueLen {
		return false
	}
	if v == "" {
		return true
	}
	if v[0] == ' ' || v[len(v)-1] == ' ' {
		return false
	}
	for i := range len(v) {
		if c := v[i]; c < ' ' || c == 0x7f {
			return false
		}
	}
	return true
}
