package natsbridge_test

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/natsbridge"
)

// topicPattern is the topic grammar as the issue states it; ValidTopic must
// agree with it.
var topicPattern = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)

// FuzzTopic checks ValidTopic against the regular expression, and that
// Subject and TopicOf are inverses for valid topics under a valid prefix.
func FuzzTopic(f *testing.F) {
	for _, s := range []string{
		"default", "video.play", "a.b.c", "x_y-z", "", ".", "a.", ".a", "a..b", "a b",
		"a.*", "a.>", "é", "a\x00", strings.Repeat("a", 64), strings.Repeat("a", 65),
	} {
		f.Add(s, "pillarbox.events")
	}
	f.Add("play", "p")
	f.Fuzz(func(t *testing.T, topic, prefix string) {
		valid := natsbridge.ValidTopic(topic)
		if want := len(topic) <= natsbridge.MaxTopicLen && topicPattern.MatchString(topic); valid != want {
			t.Fatalf("ValidTopic(%q) = %v, want %v", topic, valid, want)
		}
		if !topicPattern.MatchString(prefix) {
			return
		}
		subject := natsbridge.Subject(prefix, topic)
		got, ok := natsbridge.TopicOf(prefix, subject)
		if ok != valid || (valid && got != topic) {
			t.Fatalf("TopicOf(%q, %q) = %q, %v; want %q, %v", prefix, subject, got, ok, topic, valid)
		}
		// A subject under another prefix never maps to a valid topic of this one
		// unless it really is under it.
		if got, ok := natsbridge.TopicOf(prefix, topic); ok && !strings.HasPrefix(topic, prefix+".") {
			t.Fatalf("TopicOf(%q, %q) = %q, true for a subject outside the prefix", prefix, topic, got)
		}
	})
}

// FuzzConfig checks that Validate never panics, that its errors wrap
// ErrInvalidConfig, and that a valid URL list has no empty entry.
func FuzzConfig(f *testing.F) {
	f.Add("nats://127.0.0.1:4222", "PILLARBOX_EVENTS", "pillarbox.events", "memory", int64(0), 1)
	f.Add("nats://a:1, tls://b:2 ,c:3", "S", "a.b", "file", int64(time.Minute), 3)
	f.Add("", "", "", "", int64(0), 0)
	f.Add("http://x", "a.b", "a..b", "disk", int64(-1), 9)
	f.Add("nats://a:1,,nats://b:2", "S S", "a.>", "", int64(time.Millisecond), -1)
	f.Fuzz(func(t *testing.T, urls, stream, subject, storage string, maxAge int64, replicas int) {
		cfg := natsbridge.Config{
			URLs: urls, Stream: stream, Subject: subject, Storage: natsbridge.Storage(storage),
			MaxAge: time.Duration(maxAge), Replicas: replicas,
		}
		err := cfg.Validate()
		if err != nil {
			if !errors.Is(err, natsbridge.ErrInvalidConfig) {
				t.Fatalf("Validate() = %v, not an ErrInvalidConfig", err)
			}
			return
		}
		for _, u := range strings.Split(urls, ",") {
			if strings.TrimSpace(u) == "" {
				t.Fatalf("Validate accepted URLs %q with an empty entry", urls)
			}
		}
		if subject != "" && !topicPattern.MatchString(subject) {
			t.Fatalf("Validate accepted subject prefix %q", subject)
		}
		if strings.ContainsAny(stream, " .*>/\\\t\r\n") {
			t.Fatalf("Validate accepted stream name %q", stream)
		}
	})
}
