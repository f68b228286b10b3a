package server

import (
	"sync"
)

// streamSet holds the live streams: for shutdown, which cuts those that do
// not end by themselves, and for metrics, which sum their counters. Adding
// and removing take one of several locks, so streams starting and ending on
// many cores do not contend.
type streamSet struct {
	shards [16]streamShard
}

type streamShard struct {
	m  map[*stream]struct{}
	mu sync.Mutex
}

func (ss *streamSet) shard(st *stream) *streamShard {
	return &ss.shards[st.start.UnixNano()%int64(len(ss.shards))]
}

func (ss *streamSet) add(st *stream) {
	sh := ss.shard(st)
	sh.mu.Lock()
	if sh.m == nil {
		sh.m = make(map[*stream]struct{})
	}
	sh.m[st] = struct{}{}
	sh.mu.Unlock()
}

// remove removes st, adding its counters to the server's totals in the same
// critical section, so that a concurrent totals never misses nor double
// counts them.
func (ss *streamSet) remove(st *stream) {
	s := st.srv
	sh := ss.shard(st)
	sh.mu.Lock()
	delete(sh.m, st)
	s.stats.delivered.Add(st.delivered.Load())
	s.stats.written.Add(st.written.Load())
	sh.mu.Unlock()
}

// each calls fn for every live stream, shard by shard, under the shard's
// lock: fn must not block.
func (ss *streamSet) each(fn func(*stream)) {
	for i := range ss.shards {
		sh := &ss.shards[i]
		sh.mu.Lock()
		for st := range sh.m {
			fn(st)
		}
		sh.mu.Unlock()
	}
}

// len returns the number of live streams.
func (ss *streamSet) len() int {
	n := 0
	for i := range ss.shards {
		sh := &ss.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

// totals returns the frames and bytes the live streams have written.
func (ss *streamSet) totals() (delivered, written uint64) {
	ss.each(func(st *stream) {
		delivered += st.delivered.Load()
		written += st.written.Load()
	})
	return delivered, written
}

// tasks tracks the goroutines the service starts for hijacked streams, so
// that shutdown waits for them; none starts once it is stopped.
type tasks struct {
	wg      sync.WaitGroup
	mu      sync.Mutex
	stopped bool
}

// start registers a task; it returns false once stop was called.
func (t *tasks) start() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return false
	}
	t.wg.Add(1)
	return true
}

func (t *tasks) done() { t.wg.Done() }

// stop refuses new tasks and returns a channel closed when every task has
// ended.
func (t *tasks) stop() <-chan struct{} {
	t.mu.Lock()
	t.stopped = true
	t.mu.Unlock()
	ch := make(chan struct{})
	go func() {
		t.wg.Wait()
		close(ch)
	}()
	return ch
}
