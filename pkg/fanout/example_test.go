package fanout_test

import (
	"context"
	"fmt"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/fanout"
)

func Example() {
	ring := fanout.New(fanout.Options{Size: 4})
	defer ring.Close()

	sub, _ := ring.Subscribe() // every topic
	defer sub.Close()

	for _, msg := range []string{"a", "b", "c", "d", "e", "f"} {
		// Reserve, build the bytes with the frame's own number, commit.
		res, _ := ring.Reserve("letters", 1)
		data := fmt.Appendf(nil, "%d:%s", res.Seq(), msg)
		ring.Commit(res, fanout.Message{Data: data})
	}

	// The subscriber fell more than the ring's size behind: it learns how
	// many frames it missed and gets the ones still held, in order.
	batch := make([]*fanout.Frame, 0, 16)
	batch, missed := sub.Read(batch)
	fmt.Println("missed:", missed)
	for _, f := range batch {
		fmt.Println(f.Seq(), string(f.Bytes()))
	}

	// Nothing else is ready, so Wait sleeps until its timeout.
	fmt.Println(sub.Wait(context.Background(), time.Millisecond))
	// Output:
	// missed: 2
	// 3 3:c
	// 4 4:d
	// 5 5:e
	// 6 6:f
	// fanout: wait timed out
}
