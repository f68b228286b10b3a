package natsbridge

// SetAtomicBatches switches atomic batch publish off (or on) for tests of
// the pipelined path. A new session (after a reset) sets it from the stream
// again.
func (b *Bridge) SetAtomicBatches(on bool) { b.atomicBatch.Store(on) }
