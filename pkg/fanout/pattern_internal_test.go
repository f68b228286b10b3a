package fanout

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

// Internal tests of patterns: wake-ups, and the patterns topics list. In a
// synctest bubble, synctest.Wait lets every wake-up that is due happen
// before the test looks: no test depends on timing.

// TestReleasedTopicFrameWakesAPatternCreatedSince: a frame committed on a
// topic that is then released before the frame becomes visible (a number
// before it is still in flight) reaches the subscribers to a pattern that
// matches the topic's name, even if the pattern came after the release (the
// released topic does not list it) and no live topic has that name: it
// wakes them. It used to wake nobody: the subscriber slept on with a frame
// to read.
func TestReleasedTopicFrameWakesAPatternCreatedSince(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := New(Options{Size: 16})
		defer r.Close()
		held, err := r.Reserve("b", 1) // 1, in flight
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Publish("a.x", []byte("2")); err != nil { // 2: committed, not visible
			t.Fatal(err)
		}
		r.topics.releaseIdle()
		r.topics.releaseIdle() // a.x released; b is pinned
		if r.topics.get("a.x") != nil {
			t.Fatal("a.x not released")
		}
		sub, err := r.Subscribe("a.*")
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		woke := make(chan error, 1)
		go func() { woke <- sub.Wait(context.Background(), time.Hour) }()
		synctest.Wait()
		r.Commit(held, Message{Data: []byte("1")}) // 1 and 2 visible
		synctest.Wait()
		select {
		case err := <-woke:
			if err != nil {
				t.Fatal(err)
			}
		default:
			sub.Interrupt()
			<-woke
			t.Fatal("not woken by a frame of a released topic its pattern matches")
		}
		batch, _ := sub.Read(make([]*Frame, 0, 4))
		if len(batch) != 1 || string(batch[0].Bytes()) != "2" {
			t.Fatalf("read %d frames, want frame 2", len(batch))
		}
	})
}
