package llmux

import (
	"os"
	"runtime"
	"sync"
)

// Gateway is an open llmux gateway. It is safe for concurrent use by any
// number of goroutines; calls run in parallel inside libllmux.
//
// Close releases it. Close waits for the calls in flight to return (and stops
// the streams in flight within milliseconds); calls made after Close has
// begun return ErrClosed. A finalizer closes a Gateway that becomes
// unreachable without Close, but do not rely on it: the C gateway holds
// connections and threads.
type Gateway struct {
	mu       sync.Mutex
	idle     sync.Cond // signalled when inflight drops to 0 and when ptr is released
	ptr      *cgw
	closed   bool
	inflight int
	streams  map[*stream]struct{}
	names    nameCache   // the provider and model names of the last answer
	aliases  []string    // the config's model aliases (GET /v1/models of RoundTripper)
	recent   recentCalls // the Meta of the last RoundTripper calls, by call id
	alert    *alertBox   // the alert callback's box (keys.go); nil until OnAlert
}

// Version is the version of the libllmux in use, "MAJOR.MINOR.PATCH".
func Version() string { return cVersion() }

// Open opens a gateway from a JSON config (docs/config.md). An invalid config
// gives an *Error of class ErrConfig whose message names the JSON path.
// Provider API keys are read from the environment variables the config names
// during this call.
func Open(config []byte) (*Gateway, error) {
	ptr, err := cOpen(config)
	if err != nil {
		return nil, err
	}
	g := newGateway(ptr)
	g.aliases = aliasNames(config)
	return g, nil
}

// OpenFile is Open reading the config from a file (ErrIO if it cannot be read).
func OpenFile(path string) (*Gateway, error) {
	if hasNUL(path) {
		return nil, &Error{Code: StatusIO, Message: "path contains a NUL byte"}
	}
	ptr, err := cOpenFile(path)
	if err != nil {
		return nil, err
	}
	g := newGateway(ptr)
	if config, err := os.ReadFile(path); err == nil {
		g.aliases = aliasNames(config)
	}
	return g, nil
}

func newGateway(ptr *cgw) *Gateway {
	g := &Gateway{ptr: ptr, streams: map[*stream]struct{}{}}
	g.idle.L = &g.mu
	runtime.SetFinalizer(g, (*Gateway).Close)
	return g
}

// Close stops the streams in flight (within milliseconds), waits for every
// call in flight to return, and releases the gateway. A Chat whose context
// cannot end (context.Background) is not interrupted, so Close may wait up to
// that call's timeout. Close is
// idempotent and safe to call from several goroutines; each call returns once
// the gateway is released. It always returns nil.
func (g *Gateway) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.closed {
		g.closed = true
		runtime.SetFinalizer(g, nil)
		for s := range g.streams {
			s.stop(ErrClosed)
		}
		for g.inflight > 0 {
			g.idle.Wait()
		}
		cClose(g.ptr)
		forgetLog(g.ptr) // the C log writer has stopped
		g.ptr = nil
		g.alert.free() // no alert can come once the C gateway is closed
		g.idle.Broadcast()
		return nil
	}
	for g.ptr != nil {
		g.idle.Wait()
	}
	return nil
}

// acquire registers a call in flight and returns the C gateway, or ErrClosed.
func (g *Gateway) acquire() (*cgw, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil, ErrClosed
	}
	g.inflight++
	return g.ptr, nil
}

// release ends a call begun with acquire.
func (g *Gateway) release() {
	g.mu.Lock()
	g.inflight--
	if g.inflight == 0 {
		g.idle.Broadcast()
	}
	g.mu.Unlock()
}

// acquireStream is acquire for a stream, which Close can stop.
func (g *Gateway) acquireStream(s *stream) (*cgw, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil, ErrClosed
	}
	g.inflight++
	g.streams[s] = struct{}{}
	return g.ptr, nil
}

func (g *Gateway) releaseStream(s *stream) {
	g.mu.Lock()
	delete(g.streams, s)
	g.mu.Unlock()
	g.release()
}
