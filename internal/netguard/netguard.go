// Package netguard keeps a server accepting connections under pressure.
//
// [Listener] wraps a net.Listener so that running out of file descriptors
// (or of kernel memory) does not stop the server: fasthttp's Serve, like
// most accept loops, returns on the first error that is not a timeout, and
// "accept4: too many open files" is not one, so the process would exit just
// when it is busiest. The wrapper backs off and retries instead, as
// net/http's Server does, and reports the condition without flooding the
// log.
//
// [AddrLimiter] counts concurrent uses per client address (event streams
// per IP, say) so that one client cannot take every slot.
package netguard
