package llmux

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"
	"time"
)

// CallOption sets a per-call option (llmux_call_options).
type CallOption func(*callOpts)

// WithKey sets the caller's gateway key (charged for the call; subject to its
// policy). Without it the call is anonymous, if the config allows that.
func WithKey(key string) CallOption { return func(o *callOpts) { o.key = key } }

// WithWorkflow attributes the call to a workflow, e.g. "support-bot"; it is
// recorded in the trace and the spend ledger.
func WithWorkflow(name string) CallOption { return func(o *callOpts) { o.workflow = name } }

// WithTask names the step the call performs, e.g. "classify" or "draft"; it is
// a routing input and is recorded in the trace and the spend ledger.
func WithTask(name string) CallOption { return func(o *callOpts) { o.task = name } }

// WithTimeout bounds the whole call, all attempts included (rounded up to
// whole milliseconds). 0 means the config's default. A context deadline that
// comes sooner wins.
func WithTimeout(d time.Duration) CallOption {
	return func(o *callOpts) {
		o.timeoutMS = 0
		if d > 0 {
			o.timeoutMS = ceilMS(d)
		}
	}
}

// WithTrace asks for the trace of a successful call: the route decision and
// every attempt, in Meta.Trace. Without it a successful call's Meta.Trace is
// empty (libllmux builds a trace only when asked, and decoding it costs
// several microseconds a call); a failed call's *Error carries the trace
// either way.
func WithTrace() CallOption { return withTrace }

func withTrace(o *callOpts) { o.trace = true }

func ceilMS(d time.Duration) int64 { return int64((d + time.Millisecond - 1) / time.Millisecond) }

// deadlineGrace is how long a call whose context deadline passed waits for
// libllmux, which was given the same deadline, to return its own timeout
// result with the trace.
const deadlineGrace = 100 * time.Millisecond

// applyOpts applies opts to a zero callOpts.
func applyOpts(opts []CallOption) callOpts {
	o := new(callOpts) // the options see a pointer: it escapes
	for _, opt := range opts {
		if opt != nil {
			opt(o)
		}
	}
	return *o
}

// buildOpts applies opts and folds the context's deadline into the timeout.
func buildOpts(ctx context.Context, opts []CallOption) (callOpts, error) {
	var o callOpts
	if len(opts) > 0 {
		o = applyOpts(opts)
	}
	if hasNUL(o.key) || hasNUL(o.workflow) || hasNUL(o.task) {
		return o, argError("call option contains a NUL byte")
	}
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl)
		if left <= 0 {
			return o, contextError(ctx)
		}
		if ms := ceilMS(left); o.timeoutMS == 0 || ms < o.timeoutMS {
			o.timeoutMS = ms
			o.ctxDeadline = dl
		}
	}
	return o, nil
}

// Chat sends one Chat Completions request through the gateway: the alias in
// req.Model is resolved, its targets are tried in order with fallback, and
// the completion comes back with Meta (provider, model, cost, and the trace
// when asked for with WithTrace). A failed call returns an *Error, which
// always carries the trace.
//
// The context's deadline becomes the call's timeout, and cancelling ctx stops
// the C call (through llmux_cancel) within milliseconds, also while it waits
// on a provider: Chat then returns an error matching ErrCancelled and
// context.Canceled, and the call has ended (its attempt is in the trace and
// the spend report, and Close does not wait for it).
func (g *Gateway) Chat(ctx context.Context, req *ChatRequest, opts ...CallOption) (*ChatResponse, error) {
	body, err := encodeRequest(req)
	if err != nil {
		return nil, err
	}
	return g.chat(ctx, body, opts)
}

// reqBuf is a NUL-terminated request for C, owned by one call. The buffers
// are recycled once the C call has returned.
type reqBuf struct{ b []byte }

var reqBufs = sync.Pool{New: func() any { return &reqBuf{b: make([]byte, 0, 1024)} }}

// maxPooledRequest is the largest buffer put back in the pool.
const maxPooledRequest = 64 << 10

func getReqBuf() *reqBuf { return reqBufs.Get().(*reqBuf) }

// free recycles the buffer; the C call that read it must have returned.
func (r *reqBuf) free() {
	if cap(r.b) <= maxPooledRequest {
		r.b = r.b[:0]
		reqBufs.Put(r)
	}
}

// encodeRequest encodes req into a NUL-terminated JSON request for C.
func encodeRequest(req *ChatRequest) (*reqBuf, error) {
	if req == nil {
		return nil, argError("nil request")
	}
	r := getReqBuf()
	b, err := appendRequest(r.b[:0], req)
	if err != nil {
		r.free()
		return nil, &Error{Code: StatusBadRequest, Message: "cannot encode request: " + err.Error(), HTTPStatus: 400}
	}
	r.b = append(b, 0)
	return r, nil
}

// rawRequest copies a caller's JSON request into a NUL-terminated one for C.
func rawRequest(request []byte) (*reqBuf, error) {
	if bytes.IndexByte(request, 0) >= 0 {
		return nil, &Error{Code: StatusBadRequest, Message: "request contains a NUL byte", HTTPStatus: 400}
	}
	r := getReqBuf()
	r.b = append(append(r.b[:0], request...), 0)
	return r, nil
}

// callOptions checks ctx and turns the options into the C call's.
func callOptions(ctx context.Context, opts []CallOption) (context.Context, callOpts, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if ctx.Err() != nil {
		return ctx, callOpts{}, contextError(ctx)
	}
	o, err := buildOpts(ctx, opts)
	return ctx, o, err
}

// ChatJSON is Chat for a request that is already JSON. request is copied.
func (g *Gateway) ChatJSON(ctx context.Context, request []byte, opts ...CallOption) (*ChatResponse, error) {
	body, err := rawRequest(request)
	if err != nil {
		return nil, err
	}
	return g.chat(ctx, body, opts)
}

// chat runs a call; request is owned by the call, which frees it.
func (g *Gateway) chat(ctx context.Context, request *reqBuf, opts []CallOption) (*ChatResponse, error) {
	ctx, o, err := callOptions(ctx, opts)
	if err != nil {
		request.free()
		return nil, err
	}
	ptr, err := g.acquire()
	if err != nil {
		request.free()
		return nil, err
	}
	if ctx.Done() == nil {
		d := cChat(ptr, &g.names, request.b, &o)
		g.release()
		request.free()
		return buildResponse(&d, ctx, &o)
	}
	return g.chatAsync(ctx, ptr, request, o)
}

// chatAsync runs a call whose context can end: the C call runs on its own
// goroutine and the context's end triggers its llmux_cancel, which stops it
// within milliseconds (its result, with the trace, then comes back). A
// separate function, so that chat's o stays on the stack.
func (g *Gateway) chatAsync(ctx context.Context, ptr *cgw, request *reqBuf, o callOpts) (*ChatResponse, error) {
	o.cancel = newCancel()
	stop := context.AfterFunc(ctx, o.cancel.trigger)
	done := make(chan resultData, 1)
	go func() {
		defer g.release()
		d := cChat(ptr, &g.names, request.b, &o)
		stop()
		o.cancel.free()
		request.free()
		done <- d
	}()
	select {
	case d := <-done:
		return buildResponse(&d, ctx, &o)
	case <-ctx.Done():
	}
	// the C call was told to stop (or, for a deadline, was given the same
	// one): wait briefly for its own result, which carries the trace
	t := time.NewTimer(deadlineGrace)
	defer t.Stop()
	select {
	case d := <-done:
		return buildResponse(&d, ctx, &o)
	case <-t.C:
	}
	return nil, contextError(ctx)
}

// buildResponse turns a result into a *ChatResponse or an *Error.
func buildResponse(d *resultData, ctx context.Context, o *callOpts) (*ChatResponse, error) {
	meta := buildMeta(d)
	if d.status != StatusOK {
		return nil, withContextCause(newCallError(d, meta), ctx, o)
	}
	resp, err := newResponse(d.json)
	if err != nil {
		return nil, &Error{Code: StatusBadResponse, HTTPStatus: d.httpStatus, Body: d.json, Meta: meta,
			Message: "llmux-go: cannot decode the chat.completion: " + err.Error()}
	}
	resp.Raw = d.json
	resp.Meta = meta
	return resp, nil
}

func buildMeta(d *resultData) Meta {
	m := Meta{
		Provider:         d.provider,
		Model:            d.model,
		CostUSD:          d.costUSD,
		HTTPStatus:       d.httpStatus,
		PromptTokens:     d.promptTokens,
		CompletionTokens: d.completionTokens,
	}
	if len(d.trace) > 0 {
		m.Trace = decodeTrace(d.trace)
	}
	return m
}

// decodeTrace decodes a trace; one the binding cannot type is still
// available verbatim in Raw.
func decodeTrace(raw []byte) Trace {
	t := new(Trace)
	_ = json.Unmarshal(raw, t)
	t.Raw = raw
	return *t
}
