package llmux

import (
	"context"
	"iter"
	"runtime"
	"runtime/cgo"
	"sync"
)

// chunkBuffer is how many chunks the transfer may run ahead of the consumer.
const chunkBuffer = 16

// Stream is a streamed call in progress. Read it like a sql.Rows:
//
//	s, err := gw.ChatStream(ctx, req)
//	if err != nil { ... }
//	defer s.Close()
//	for s.Next() {
//		fmt.Print(s.Chunk().Text())
//	}
//	if err := s.Err(); err != nil { ... }
//	resp, err := s.Result() // the assembled chat.completion, with Meta
//
// or range over s.All(). The C call runs on its own goroutine and hands each
// chunk over a channel. Cancelling the context, calling Close (or
// Gateway.Close) or breaking out of All triggers the call's llmux_cancel,
// which stops the transfer within milliseconds, also while a stalled provider
// sends nothing (the call then ends with ErrCancelled).
//
// A Stream is used by one goroutine at a time, except Close, which any
// goroutine may call.
type Stream struct {
	s        *stream
	first    *ChatChunk // the chunk ChatStream waited for, until Next takes it
	cur      *ChatChunk
	err      error
	finished bool
}

// stream is the state shared with the goroutine that runs the C call; Stream
// wraps it so a finalizer can stop an abandoned stream.
type stream struct {
	ctx      context.Context
	chunks   chan *ChatChunk
	stopCh   chan struct{}
	stopOnce sync.Once
	stopErr  error         // why it was stopped: nil for Stream.Close, ErrClosed for Gateway.Close
	done     chan struct{} // closed once resp/err are set and chunks is closed
	cancel   *cancelHandle // stops the C call at once (context end, Close, Gateway.Close)

	resp     *ChatResponse
	err      error
	chunkErr error // a chunk the binding could not decode
}

// ChatStream starts a streamed call and waits for its first chunk. It returns
// the call's *Error when the call fails before any chunk (every target
// failed, an unknown model, a timeout or a cancelled context before the
// first chunk), as well as when it cannot start (a closed gateway, an
// unencodable request, bad options). What goes wrong after the first chunk
// comes from Err and Result. Fallback to another target happens only before
// the first chunk.
func (g *Gateway) ChatStream(ctx context.Context, req *ChatRequest, opts ...CallOption) (*Stream, error) {
	body, err := encodeRequest(req)
	if err != nil {
		return nil, err
	}
	return g.stream(ctx, body, opts)
}

// ChatStreamJSON is ChatStream for a request that is already JSON. request is
// copied.
func (g *Gateway) ChatStreamJSON(ctx context.Context, request []byte, opts ...CallOption) (*Stream, error) {
	body, err := rawRequest(request)
	if err != nil {
		return nil, err
	}
	return g.stream(ctx, body, opts)
}

func (g *Gateway) stream(ctx context.Context, request *reqBuf, opts []CallOption) (*Stream, error) {
	ctx, o, err := callOptions(ctx, opts)
	if err != nil {
		request.free()
		return nil, err
	}
	s := &stream{
		ctx:    ctx,
		chunks: make(chan *ChatChunk, chunkBuffer),
		stopCh: make(chan struct{}),
		done:   make(chan struct{}),
		cancel: newCancel(),
	}
	o.cancel = s.cancel
	ptr, err := g.acquireStream(s)
	if err != nil {
		s.cancel.free()
		request.free()
		return nil, err
	}
	go s.run(g, ptr, request, &o)
	st := &Stream{s: s}
	runtime.SetFinalizer(st, func(st *Stream) { st.s.stop(nil) })
	if err := st.start(); err != nil {
		return nil, err
	}
	return st, nil
}

// start waits for the first chunk, which Next then returns, or for the end of
// a call that failed before it.
func (st *Stream) start() error {
	s := st.s
	select {
	case c, ok := <-s.chunks:
		if ok {
			st.first = c
			return nil
		}
		<-s.done
		st.finished = true // no chunk: a failure, or an empty answer for Result
		return s.err
	case <-s.stopCh: // Gateway.Close
		return s.stopErr
	case <-s.ctx.Done():
		s.stop(nil)
		return contextError(s.ctx)
	}
}

// run makes the C call; the callback (callbacks.go) reaches s through a
// cgo.Handle, deleted once the call has returned.
func (s *stream) run(g *Gateway, ptr *cgw, request *reqBuf, o *callOpts) {
	defer g.releaseStream(s)
	h := cgo.NewHandle(s)
	stopAfter := context.AfterFunc(s.ctx, s.cancel.trigger)
	d := cChatStream(ptr, &g.names, request.b, o, uintptr(h))
	stopAfter()
	s.cancel.free()
	h.Delete()
	request.free()
	s.resp, s.err = buildResponse(&d, s.ctx, o)
	if s.err != nil && s.chunkErr != nil && d.status == StatusCancelled {
		s.err = s.chunkErr
	}
	close(s.chunks)
	close(s.done)
}

// stop makes the chunk callback ask libllmux to stop the transfer. reason is
// what Err reports afterwards.
func (s *stream) stop(reason error) {
	s.stopOnce.Do(func() {
		s.stopErr = reason
		close(s.stopCh)
		s.cancel.trigger()
	})
}

func (s *stream) stopped() bool {
	select {
	case <-s.stopCh:
		return true
	default:
		return false
	}
}

// deliver hands one chunk to the consumer; false asks libllmux to stop. It
// runs on the goroutine of the C call.
func (s *stream) deliver(raw []byte) bool {
	if s.stopped() || s.ctx.Err() != nil {
		return false
	}
	c, err := newChunk(raw)
	if err != nil {
		s.chunkErr = &Error{Code: StatusBadResponse, Body: raw,
			Message: "llmux-go: cannot decode a chat.completion.chunk: " + err.Error()}
		return false
	}
	c.Raw = raw
	select {
	case s.chunks <- c:
		return true
	case <-s.stopCh:
		return false
	case <-s.ctx.Done():
		return false
	}
}

// Next waits for the next chunk and reports whether there is one. It returns
// false when the stream has ended, failed, been closed, or its context has
// ended; Err says which.
func (st *Stream) Next() bool {
	if st.finished {
		return false
	}
	s := st.s
	if s.stopped() {
		return st.halt()
	}
	if s.ctx.Err() != nil {
		return st.cancel()
	}
	if st.first != nil {
		st.cur, st.first = st.first, nil
		return true
	}
	select {
	case c, ok := <-s.chunks:
		if !ok {
			<-s.done
			st.finished = true
			st.err = s.err
			return false
		}
		st.cur = c
		return true
	case <-s.stopCh:
		return st.halt()
	case <-s.ctx.Done():
		return st.cancel()
	}
}

func (st *Stream) halt() bool {
	st.finished = true
	st.err = st.s.stopErr
	return false
}

func (st *Stream) cancel() bool {
	st.s.stop(nil)
	st.finished = true
	st.err = contextError(st.s.ctx)
	return false
}

// Chunk is the chunk the last successful Next got.
func (st *Stream) Chunk() *ChatChunk { return st.cur }

// Err is the error that ended the stream: nil when it ended normally or Close
// stopped it, ErrClosed when Gateway.Close stopped it, the call's *Error when
// it failed. After a context cancellation it matches both ErrCancelled and
// context.Canceled (ErrTimeout and context.DeadlineExceeded for a deadline).
func (st *Stream) Err() error { return st.err }

// Close stops the stream. It does not wait for the transfer to end (Result
// does). It is idempotent, returns nil, and may be called from any goroutine.
func (st *Stream) Close() error {
	st.s.stop(nil)
	return nil
}

// Result waits for the call to end and returns the assembled chat.completion
// (content, tool calls, finish reason and usage, as if it had not been
// streamed) with its Meta, or the call's *Error. Chunks not yet read are read
// and discarded, so Result alone gives the whole answer. After Close or an
// early break, the error is ErrCancelled.
func (st *Stream) Result() (*ChatResponse, error) {
	for st.Next() {
	}
	<-st.s.done
	return st.s.resp, st.s.err
}

// All returns an iterator over the chunks. Breaking out of the loop closes the
// stream. If the stream fails, the last pair yielded has a nil chunk and the
// error.
func (st *Stream) All() iter.Seq2[*ChatChunk, error] {
	return func(yield func(*ChatChunk, error) bool) {
		for st.Next() {
			if !yield(st.cur, nil) {
				st.Close()
				return
			}
		}
		if st.err != nil {
			yield(nil, st.err)
		}
	}
}
