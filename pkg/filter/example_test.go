package filter_test

import (
	"errors"
	"fmt"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/filter"
)

// A listener's query becomes a Filter; the server matches every event
// against all the live filters at once with a Set.
func Example() {
	// GET /events?where=type:error&where=type:warning&where=media.id:urn:rts:video:1
	errorsOfOneVideo, err := filter.Parse([]string{"type:error", "type:warning", "media.id:urn:rts:video:1"}, "", filter.Limits{})
	if err != nil {
		panic(err)
	}
	// GET /events?sample=0.5
	half, _ := filter.Parse(nil, "0.5", filter.Limits{})
	// GET /events?where=code:404
	notFound, _ := filter.Parse([]string{"code:404"}, "", filter.Limits{})

	set := filter.NewSet([]*filter.Filter{errorsOfOneVideo, half, notFound})
	event := []byte(`{"type":"error","media":{"id":"urn:rts:video:1"},"code":404,"user_ip":"1.2.3.4"}`)
	var dst []int
	for id := uint64(1); id <= 3; id++ {
		dst = set.Match(event, id, dst[:0])
		fmt.Println(id, dst)
	}
	fmt.Println(errorsOfOneVideo)
	// Output:
	// 1 [0 1 2]
	// 2 [0 1 2]
	// 3 [0 2]
	// media.id:urn:rts:video:1 type:error|warning
}

// Parse's errors are meant for the client, as a 400 response.
func ExampleParse_error() {
	_, err := filter.Parse([]string{"media..id:1"}, "", filter.Limits{})
	fmt.Println(err, errors.Is(err, filter.ErrInvalid))
	_, err = filter.Parse(nil, "2", filter.Limits{})
	fmt.Println(err)
	// Output:
	// where "media..id:1": empty key in path true
	// sample "2": must be a number greater than 0 and at most 1
}

func ExampleTopLevelString() {
	topic, ok := filter.TopLevelString([]byte(`{"topic":"player","media":{"topic":"no"}}`), "topic")
	fmt.Println(topic, ok)
	// Output: player true
}
