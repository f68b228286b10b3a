package natsbridge

import (
	"errors"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestParseAck reads acknowledgements as nats-server 2.15 writes them (by
// hand, with a space before a duplicate's true), as encoding/json writes
// them, and errors, without encoding/json on the common path.
func TestParseAck(t *testing.T) {
	t.Parallel()
	noResp := &nats.Msg{Header: nats.Header{"Status": []string{"503"}}}
	for _, tc := range []struct {
		name string
		msg  *nats.Msg
		want jetstream.PubAck
		err  error
		code jetstream.ErrorCode
	}{
		{"stored", &nats.Msg{Data: []byte(`{"stream":"S","seq":42}`)}, jetstream.PubAck{Stream: "S", Sequence: 42}, nil, 0},
		{"with a domain", &nats.Msg{Data: []byte(`{"stream":"S","domain":"hub","seq":7}`)}, jetstream.PubAck{Stream: "S", Sequence: 7}, nil, 0},
		{"duplicate", &nats.Msg{Data: []byte(`{"stream":"S","seq":3,"duplicate": true}`)}, jetstream.PubAck{Stream: "S", Sequence: 3, Duplicate: true}, nil, 0},
		{"duplicate, compact", &nats.Msg{Data: []byte(`{"stream":"S","seq":3,"duplicate":true}`)}, jetstream.PubAck{Stream: "S", Sequence: 3, Duplicate: true}, nil, 0},
		{"not a duplicate", &nats.Msg{Data: []byte(`{"stream":"S","seq":3,"duplicate":false}`)}, jetstream.PubAck{Stream: "S", Sequence: 3}, nil, 0},
		{"error", &nats.Msg{Data: []byte(`{"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 5"},"stream":"S","seq":0}`)}, jetstream.PubAck{}, nil, codeWrongLastSeq},
		{"no responders", noResp, jetstream.PubAck{}, nats.ErrNoResponders, 0},
		{"garbage", &nats.Msg{Data: []byte(`{"seq":1}`)}, jetstream.PubAck{}, jetstream.ErrInvalidJSAck, 0},
		{"empty", &nats.Msg{}, jetstream.PubAck{}, jetstream.ErrInvalidJSAck, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := parseAck(tc.msg)
			var apiErr *jetstream.APIError
			switch {
			case tc.code != 0:
				if !errors.As(r.err, &apiErr) || apiErr.ErrorCode != tc.code {
					t.Fatalf("parseAck = %+v, want API error %d", r, tc.code)
				}
			case tc.err != nil:
				if !errors.Is(r.err, tc.err) {
					t.Fatalf("parseAck = %+v, want %v", r, tc.err)
				}
			case r.err != nil || r.ack != tc.want:
				t.Fatalf("parseAck = %+v, want %+v", r, tc.want)
			}
		})
	}
}
