package llmux

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// RecentCalls is how many calls' Meta a Gateway keeps for CallMeta.
const RecentCalls = 1024

// RoundTripper returns an http.RoundTripper that answers OpenAI API requests
// in-process through g, so that an OpenAI client (openai-go, or any client
// that takes an *http.Client) routes through llmux with no server:
//
//	client := openai.NewClient(
//		option.WithBaseURL("http://llmux/v1"),
//		option.WithAPIKey("my-gateway-key"),
//		option.WithHTTPClient(&http.Client{Transport: llmux.RoundTripper(gw)}),
//	)
//
// POST .../chat/completions goes through ChatJSON, or ChatStreamJSON when the
// body has "stream": true (answered as text/event-stream); GET .../models and
// .../models/{id} list the config's aliases; any other path gets 404 (405 for
// another method on those paths) with an OpenAI error body.
//
// The bearer token is the gateway key (none for an empty token or "llmux");
// the headers X-Llmux-Task, X-Llmux-Workflow and X-Llmux-Timeout (seconds)
// are the call options, and the request's context bounds the call. opts are
// defaults applied before those. A failed call is answered with the status
// the OpenAI SDKs map to their error classes (429 for a rate limit, 401, 403,
// 404, 400, 5xx...) and an OpenAI error body, with Retry-After and
// retry-after-ms when the provider asked to wait; a call that could not
// connect or ran out of time returns the *Error from RoundTrip instead (as a
// network failure would).
//
// Every answer carries X-Llmux-Call-Id; a non-streamed one also
// X-Llmux-Provider, X-Llmux-Model and X-Llmux-Cost-Usd (when the price is
// known). g.CallMeta(id) returns the Meta, trace included, of one of the
// gateway's last RecentCalls calls made through a RoundTripper.
func RoundTripper(g *Gateway, opts ...CallOption) http.RoundTripper {
	return &roundTripper{g: g, opts: append([]CallOption{WithTrace()}, opts...)}
}

type roundTripper struct {
	g    *Gateway
	opts []CallOption
}

// recentCalls is a bounded map of call id -> Meta (a ring of ids).
type recentCalls struct {
	mu   sync.Mutex
	byID map[string]Meta
	ring []string
	next int
}

func (r *recentCalls) put(id string, m Meta) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byID == nil {
		r.byID = make(map[string]Meta)
		r.ring = make([]string, RecentCalls)
	}
	if old := r.ring[r.next]; old != "" {
		delete(r.byID, old)
	}
	r.ring[r.next] = id
	r.next = (r.next + 1) % RecentCalls
	r.byID[id] = m
}

// CallMeta returns the Meta (provider, model, cost, trace) of a call made
// through a RoundTripper of g, by its X-Llmux-Call-Id header; false once it
// is older than the last RecentCalls calls. A stream's Meta is there once its
// body has been read to the end or closed.
func (g *Gateway) CallMeta(callID string) (Meta, bool) {
	g.recent.mu.Lock()
	defer g.recent.mu.Unlock()
	m, ok := g.recent.byID[callID]
	return m, ok
}

var callSeq atomic.Uint64

var callPrefix = "llmuxcall-" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36) + "-"

func newCallID() string { return callPrefix + strconv.FormatUint(callSeq.Add(1), 10) }

// aliasNames returns the sorted keys of the config's "models" object.
func aliasNames(config []byte) []string {
	var c struct {
		Models map[string]json.RawMessage `json:"models"`
	}
	if json.Unmarshal(config, &c) != nil {
		return nil
	}
	names := make([]string, 0, len(c.Models))
	for n := range c.Models {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// httpStatusOf maps an error class to the HTTP status the OpenAI SDKs map to
// the matching error class. StatusConnect and StatusTimeout are not answered.
var httpStatusOf = map[Status]int{
	StatusInvalidArgument: 400,
	StatusNoMemory:        500,
	StatusBadRequest:      400,
	StatusUnknownModel:    404,
	StatusAuth:            401,
	StatusPermission:      403,
	StatusNotFound:        404,
	StatusRateLimit:       429,
	StatusContextWindow:   400,
	StatusContentFilter:   400,
	StatusProvider:        500, // the provider's own 5xx when it sent one
	StatusBadResponse:     502,
	StatusBudget:          402,
	StatusUnsupported:     400,
	StatusCancelled:       499,
	StatusInternal:        500,
}

func errorJSON(message, typ, code string) []byte {
	b, _ := json.Marshal(map[string]any{"error": map[string]any{
		"message": message, "type": typ, "param": nil, "code": code}})
	return b
}

func answer(req *http.Request, status int, body []byte, h http.Header) *http.Response {
	if h == nil {
		h = http.Header{}
	}
	if h.Get("Content-Type") == "" {
		h.Set("Content-Type", "application/json")
	}
	return &http.Response{
		Status: strconv.Itoa(status) + " " + http.StatusText(status), StatusCode: status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)),
		Request: req,
	}
}

func (rt *roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		defer req.Body.Close()
	}
	path := strings.TrimRight(req.URL.Path, "/")
	switch {
	case strings.HasSuffix(path, "/chat/completions"):
		if req.Method != http.MethodPost {
			return rt.notAllowed(req), nil
		}
		return rt.chat(req)
	case strings.HasSuffix(path, "/models"):
		if req.Method != http.MethodGet {
			return rt.notAllowed(req), nil
		}
		return rt.models(req, ""), nil
	case strings.Contains(path, "/models/"):
		if req.Method != http.MethodGet {
			return rt.notAllowed(req), nil
		}
		return rt.models(req, path[strings.LastIndex(path, "/models/")+len("/models/"):]), nil
	}
	return answer(req, 404, errorJSON("llmux does not serve "+req.Method+" "+req.URL.Path+
		": it answers POST .../chat/completions and GET .../models in-process",
		"invalid_request_error", "unknown_url"), nil), nil
}

func (rt *roundTripper) notAllowed(req *http.Request) *http.Response {
	return answer(req, 405, errorJSON(req.Method+" is not allowed on "+req.URL.Path,
		"invalid_request_error", "method_not_allowed"), nil)
}

type modelObject struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

func (rt *roundTripper) models(req *http.Request, id string) *http.Response {
	if id == "" {
		list := struct {
			Object string        `json:"object"`
			Data   []modelObject `json:"data"`
		}{Object: "list", Data: []modelObject{}}
		for _, n := range rt.g.aliases {
			list.Data = append(list.Data, modelObject{n, "model", 0, "llmux"})
		}
		b, _ := json.Marshal(list)
		return answer(req, 200, b, nil)
	}
	for _, n := range rt.g.aliases {
		if n == id {
			b, _ := json.Marshal(modelObject{n, "model", 0, "llmux"})
			return answer(req, 200, b, nil)
		}
	}
	return answer(req, 404, errorJSON("The model '"+id+"' is no alias of this gateway",
		"invalid_request_error", "model_not_found"), nil)
}

// callOpts are the call options of a request: the defaults, then its headers.
func (rt *roundTripper) callOpts(req *http.Request) ([]CallOption, error) {
	opts := rt.opts
	add := func(o CallOption) { opts = append(opts[:len(opts):len(opts)], o) }
	if auth := req.Header.Get("Authorization"); auth != "" {
		scheme, token, _ := strings.Cut(auth, " ")
		token = strings.TrimSpace(token)
		if strings.EqualFold(scheme, "bearer") && token != "" && token != "llmux" {
			add(WithKey(token))
		}
	}
	if v := req.Header.Get("X-Llmux-Task"); v != "" {
		add(WithTask(v))
	}
	if v := req.Header.Get("X-Llmux-Workflow"); v != "" {
		add(WithWorkflow(v))
	}
	if v := req.Header.Get("X-Llmux-Timeout"); v != "" {
		secs, err := strconv.ParseFloat(v, 64)
		if err != nil || !(secs > 0) {
			return nil, errors.New("X-Llmux-Timeout must be a positive number of seconds, got " +
				strconv.Quote(v))
		}
		add(WithTimeout(time.Duration(secs * float64(time.Second))))
	}
	return opts, nil
}

func wantsStream(body []byte) bool {
	if !bytes.Contains(body, []byte(`"stream"`)) {
		return false
	}
	var r struct {
		Stream bool `json:"stream"`
	}
	return json.Unmarshal(body, &r) == nil && r.Stream
}

func (rt *roundTripper) chat(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		var err error
		if body, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
	}
	opts, err := rt.callOpts(req)
	if err != nil {
		return answer(req, 400, errorJSON(err.Error(), "invalid_request_error", "invalid_header"), nil), nil
	}
	id := newCallID()
	ctx := req.Context()
	if wantsStream(body) {
		s, err := rt.g.ChatStreamJSON(ctx, body, opts...)
		if err != nil {
			return rt.failure(req, id, err)
		}
		h := http.Header{}
		h.Set("Content-Type", "text/event-stream")
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Llmux-Call-Id", id)
		r := answer(req, 200, nil, h)
		r.ContentLength = -1
		r.Body = &sseBody{s: s, g: rt.g, id: id}
		return r, nil
	}
	resp, err := rt.g.ChatJSON(ctx, body, opts...)
	if err != nil {
		return rt.failure(req, id, err)
	}
	rt.g.recent.put(id, resp.Meta)
	h := http.Header{}
	h.Set("X-Llmux-Call-Id", id)
	setMetaHeaders(h, resp.Meta)
	if c, ok := resp.Meta.Cost(); ok {
		h.Set("X-Llmux-Cost-Usd", strconv.FormatFloat(c, 'g', -1, 64))
	}
	return answer(req, 200, resp.Raw, h), nil
}

func setMetaHeaders(h http.Header, m Meta) {
	if m.Provider != "" {
		h.Set("X-Llmux-Provider", m.Provider)
	}
	if m.Model != "" {
		h.Set("X-Llmux-Model", m.Model)
	}
}

// telling is what the attempt that names a failed call's error says: the
// last attempt whose status is the call's, else the last one.
type telling struct {
	RetryAfterMS *int64 `json:"retry_after_ms"`
	ProviderCode any    `json:"provider_code"`
	RequestID    string `json:"request_id"`
	Status       Status `json:"status"`
}

func tellingAttempt(e *Error) telling {
	var t struct {
		Attempts []telling `json:"attempts"`
	}
	if json.Unmarshal(e.Meta.Trace.Raw, &t) != nil || len(t.Attempts) == 0 {
		return telling{}
	}
	for i := len(t.Attempts) - 1; i >= 0; i-- {
		if t.Attempts[i].Status == e.Code {
			return t.Attempts[i]
		}
	}
	return t.Attempts[len(t.Attempts)-1]
}

// failure answers a failed call, or returns the error RoundTrip returns.
func (rt *roundTripper) failure(req *http.Request, id string, err error) (*http.Response, error) {
	if errors.Is(err, ErrClosed) {
		return answer(req, 503, errorJSON(err.Error(), "llmux_error", "gateway_closed"), nil), nil
	}
	var e *Error
	if !errors.As(err, &e) {
		return nil, err
	}
	if e.Meta.Trace.Raw != nil {
		rt.g.recent.put(id, e.Meta)
	}
	if e.cause != nil || e.Code == StatusConnect || e.Code == StatusTimeout {
		return nil, err // a network failure or the context's end, as net/http reports them
	}
	status, ok := httpStatusOf[e.Code]
	if !ok {
		status = 500
	}
	if e.Code == StatusProvider && e.HTTPStatus >= 500 && e.HTTPStatus <= 599 {
		status = e.HTTPStatus
	}
	t := tellingAttempt(e)
	body := e.Body
	if len(body) == 0 {
		body = errorJSON(e.Message, "llmux_error", e.Code.String())
	} else if t.ProviderCode != nil {
		body = withProviderCode(body, t.ProviderCode)
	}
	h := http.Header{}
	h.Set("X-Llmux-Call-Id", id)
	setMetaHeaders(h, e.Meta)
	if t.RetryAfterMS != nil && *t.RetryAfterMS >= 0 {
		ms := *t.RetryAfterMS
		h.Set("Retry-After-Ms", strconv.FormatInt(ms, 10))
		h.Set("Retry-After", strconv.FormatInt((ms+999)/1000, 10))
	}
	if t.RequestID != "" {
		h.Set("X-Request-Id", t.RequestID)
	}
	return answer(req, status, body, h), nil
}

// withProviderCode puts the provider's own error code in error.code (what the
// SDKs expose as the error's code) and llmux's class in error.llmux_code.
func withProviderCode(body []byte, code any) []byte {
	var b map[string]map[string]any
	if json.Unmarshal(body, &b) != nil || b["error"] == nil {
		return body
	}
	b["error"]["llmux_code"] = b["error"]["code"]
	b["error"]["code"] = code
	out, err := json.Marshal(b)
	if err != nil {
		return body
	}
	return out
}

// sseBody is a streamed answer: the chunks as SSE events, an error event if
// the call fails after its first chunk, then [DONE].
type sseBody struct {
	s    *Stream
	g    *Gateway
	id   string
	buf  []byte
	err  error // what Read returns at the end: io.EOF, or why the stream broke off
	done bool
	once sync.Once
}

func (b *sseBody) Read(p []byte) (int, error) {
	for len(b.buf) == 0 {
		if b.done {
			if b.err != nil {
				return 0, b.err
			}
			return 0, io.EOF
		}
		b.fill()
	}
	n := copy(p, b.buf)
	b.buf = b.buf[n:]
	return n, nil
}

func (b *sseBody) fill() {
	if b.s.Next() {
		b.buf = append(append(append(b.buf[:0], "data: "...), b.s.Chunk().Raw...), "\n\n"...)
		return
	}
	b.done = true
	b.buf = b.buf[:0]
	var e *Error
	err := b.s.Err()
	if err != nil && (!errors.As(err, &e) || e.cause != nil) {
		b.err = err // the context ended or the gateway closed: a broken-off body
		b.record()
		return
	}
	if e != nil {
		body := e.Body
		if len(body) == 0 {
			body = errorJSON(e.Message, "llmux_error", e.Code.String())
		}
		b.buf = append(append(append(b.buf, "data: "...), body...), "\n\n"...)
	}
	b.buf = append(b.buf, "data: [DONE]\n\n"...)
	b.record()
}

func (b *sseBody) record() {
	b.once.Do(func() {
		resp, err := b.s.Result()
		var e *Error
		switch {
		case resp != nil:
			b.g.recent.put(b.id, resp.Meta)
		case errors.As(err, &e):
			b.g.recent.put(b.id, e.Meta)
		}
	})
}

func (b *sseBody) Close() error {
	b.s.Close()
	b.record()
	b.done = true
	b.buf = nil
	return nil
}
