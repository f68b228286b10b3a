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

	sub := ring.Subscribe()
	defer sub.Close()

	for _, msg := range []string{"a", "b", "c", "d", "e", "f"} {
		_, _ = ring.Publish(fanout.NewFrame([]byte(msg)))
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
	// 3 c
	// 4 d
	// 5 e
	// 6 f
	// fanout: wait timed out
}
