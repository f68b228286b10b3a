package server

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"strconv"
)

// Event ids.
//
// An id is "<space>-<n>": n is the event's number in decimal, and the space
// says where numbers come from and which run of it they belong to, so that an
// id from before a restart (or from another stream) is recognised as foreign
// and never mapped onto a different event:
//
//	r<run>-<n>      this process's ring; run is random, drawn at start-up
//	s<stream>-<n>   a JetStream stream's sequence number; stream is the
//	                stream's creation time, which changes if it is recreated
//
// run and stream are base-36, n increases by one per event within a space
// (stream sequence numbers may skip some). At most 1+13+1+20 = 35 characters,
// all from [0-9a-z-].

// Id space kinds, the first character of an id.
const (
	spaceRun    = 'r'
	spaceStream = 's'
)

// maxSpacePrefix bounds the length of a space's prefix ("<kind><epoch>-":
// 13 base-36 digits at most for 64 bits); maxNameLen an event or topic
// name's.
const (
	maxSpacePrefix = 1 + 13 + 1
	maxNameLen     = 64
)

// idSpace is one space of ids. It is immutable.
type idSpace struct {
	// prefix is "<kind><epoch>-".
	prefix []byte
	// keyBase is added to n to make the ring key of the event numbered n:
	// 0 for a run (keys are the ring's sequence numbers); for a stream, the
	// space's ordinal in this process's life shifted above the sequence
	// number bits, so that keys keep increasing when a stream is recreated
	// and its sequence numbers start again from 1.
	keyBase uint64
}

// streamSeqBits is how many bits of a ring key hold a stream sequence number:
// 2^48 events, 89 years at 100,000 events per second.
const streamSeqBits = 48

// newRunSpace returns a space for this run of the process, with a random
// epoch.
func newRunSpace() *idSpace {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand panics rather)
	epoch := binary.LittleEndian.Uint64(b[:]) >> 1
	return &idSpace{prefix: appendSpacePrefix(nil, spaceRun, epoch)}
}

// newStreamSpace returns the space of a stream identified by created (its
// creation time in Unix nanoseconds), the ordinal-th stream this process
// has seen.
func newStreamSpace(created int64, ordinal uint64) *idSpace {
	return &idSpace{
		prefix:  appendSpacePrefix(nil, spaceStream, uint64(created)),
		keyBase: ordinal << streamSeqBits,
	}
}

func appendSpacePrefix(dst []byte, kind byte, epoch uint64) []byte {
	dst = append(dst, kind)
	dst = strconv.AppendUint(dst, epoch, 36)
	return append(dst, '-')
}

// appendID appends the id of the event numbered n.
func (sp *idSpace) appendID(dst []byte, n uint64) []byte {
	dst = append(dst, sp.prefix...)
	return strconv.AppendUint(dst, n, 10)
}

// key returns the ring key of the event numbered n.
func (sp *idSpace) key(n uint64) uint64 { return sp.keyBase + n }

// eventNumber returns the number of the event of a ring key, in whatever
// space: the key less its space's keyBase.
func eventNumber(key uint64) uint64 { return key & (1<<streamSeqBits - 1) }

// parse returns the number of id if it belongs to this space. ok is false for
// a foreign or malformed id.
func (sp *idSpace) parse(id []byte) (n uint64, ok bool) {
	rest, found := bytes.CutPrefix(id, sp.prefix)
	// Numbers are written without leading zeros; a run's start at 1, a
	// stream's 0 is the id of a stream's start (after a gap).
	if !found || len(rest) == 0 || len(rest) > 20 || (rest[0] == '0' && (len(rest) > 1 || sp.keyBase == 0)) {
		return 0, false
	}
	for _, c := range rest {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(string(rest), 10, 64)
	if err != nil || n >= 1<<streamSeqBits && sp.keyBase != 0 {
		return 0, false
	}
	return n, true
}

// validName reports whether b is a valid event name: [A-Za-z0-9._-]{1,64}.
func validName(b []byte) bool {
	if len(b) == 0 || len(b) > maxNameLen {
		return false
	}
	for _, c := range b {
		if !nameChar(c) {
			return false
		}
	}
	return true
}

func nameChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-'
}
