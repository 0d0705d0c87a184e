package llmux

// This file is the only place that calls into libllmux. Small static C shims
// in the preamble hide what cgo cannot express directly (the options struct,
// the function-pointer callback, the void* payload) and read a whole result
// in one crossing. Everything else in the package is plain Go.

/*
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <llmux.h>

// Defined in callbacks.go (//export llmuxgoOnChunk).
extern int llmuxgoOnChunk(char *chunk, size_t len, uintptr_t handle);

// The C callback type takes a const char * and a void * payload; the Go
// trampoline takes the payload as the integer value of a runtime/cgo.Handle.
static int llmuxgo_chunk_trampoline(const char *chunk, size_t len, void *payload) {
	return llmuxgoOnChunk((char *)chunk, len, (uintptr_t)payload);
}

// Defined in callbacks.go (//export llmuxgoOnAlert).
extern void llmuxgoOnAlert(char *alert, uintptr_t handle);

static void llmuxgo_alert_trampoline(const char *alert, void *payload) {
	llmuxgoOnAlert((char *)alert, (uintptr_t)payload);
}

static int llmuxgo_set_alert(llmux *gw, uintptr_t handle) {
	return llmux_set_alert_callback(gw, handle ? llmuxgo_alert_trampoline : NULL, (void *)handle);
}

static int llmuxgo_fill_options(llmux_call_options *o, const char *key, const char *workflow,
                                const char *task, long timeout_ms, llmux_cancel *cancel) {
	int rc = llmux_call_options_init(o, LLMUX_CALL_OPTIONS_VERSION);
	if (rc != LLMUX_OK)
		return rc;
	o->key = key;
	o->workflow = workflow;
	o->task = task;
	o->timeout_ms = timeout_ms;
	o->cancel = cancel;
	return LLMUX_OK;
}

static llmux_cancel *llmuxgo_cancel_new(void) {
	llmux_cancel *c = NULL;
	return llmux_cancel_new(&c) == LLMUX_OK ? c : NULL;
}

// A call and everything its result holds, returned by value from one cgo
// crossing (no Go pointer to fill in, so nothing escapes to the heap). The
// pointers are borrowed from res and live until llmux_result_free.
typedef struct llmuxgo_view {
	llmux_result *res;
	int rc;
	int status;
	int http_status;
	const char *json;
	size_t json_len;
	const char *error;
	const char *provider;
	size_t provider_len;
	const char *model;
	size_t model_len;
	const char *trace;
	size_t trace_len;
	double cost_usd;
	long prompt_tokens;
	long completion_tokens;
} llmuxgo_view;

// The trace is built on demand (llmux_result_trace_json), so it is read only
// when the caller asked for it or the call failed.
static void llmuxgo_view_result(llmuxgo_view *v, int want_trace) {
	const llmux_result *r = v->res;
	v->status = llmux_result_status(r);
	v->http_status = llmux_result_http_status(r);
	v->json = llmux_result_json(r);
	v->json_len = v->json ? strlen(v->json) : 0;
	v->error = llmux_result_error(r);
	v->provider = llmux_result_provider(r);
	v->provider_len = v->provider ? strlen(v->provider) : 0;
	v->model = llmux_result_model(r);
	v->model_len = v->model ? strlen(v->model) : 0;
	if (want_trace || v->status != LLMUX_OK) {
		v->trace = llmux_result_trace_json(r);
		v->trace_len = v->trace ? strlen(v->trace) : 0;
	}
	v->cost_usd = llmux_result_cost_usd(r);
	v->prompt_tokens = llmux_result_prompt_tokens(r);
	v->completion_tokens = llmux_result_completion_tokens(r);
}

static llmuxgo_view llmuxgo_chat(llmux *gw, const char *request_json, const char *key,
                                 const char *workflow, const char *task, long timeout_ms,
                                 llmux_cancel *cancel, int want_trace) {
	llmuxgo_view v = {0};
	llmux_call_options o;
	v.rc = llmuxgo_fill_options(&o, key, workflow, task, timeout_ms, cancel);
	if (v.rc != LLMUX_OK)
		return v;
	v.rc = llmux_chat(gw, request_json, &o, &v.res);
	if (v.res)
		llmuxgo_view_result(&v, want_trace);
	return v;
}

static llmuxgo_view llmuxgo_chat_stream(llmux *gw, const char *request_json, const char *key,
                                        const char *workflow, const char *task, long timeout_ms,
                                        llmux_cancel *cancel, int want_trace, uintptr_t handle) {
	llmuxgo_view v = {0};
	llmux_call_options o;
	v.rc = llmuxgo_fill_options(&o, key, workflow, task, timeout_ms, cancel);
	if (v.rc != LLMUX_OK)
		return v;
	v.rc = llmux_chat_stream(gw, request_json, &o, llmuxgo_chunk_trampoline, (void *)handle, &v.res);
	if (v.res)
		llmuxgo_view_result(&v, want_trace);
	return v;
}
*/
import "C"

import (
	"bytes"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// cgw is the C gateway handle; an alias so files without cgo can hold it.
type cgw = C.llmux

// errbufLen is the size of the message buffer handed to llmux_open.
const errbufLen = 1024

// callOpts are the per-call options in the form the C shims take.
type callOpts struct {
	key, workflow, task string
	timeoutMS           int64
	trace               bool          // read the trace of a successful call too
	ctxDeadline         time.Time     // set when timeoutMS comes from the context's deadline
	cancel              *cancelHandle // nil: the C call cannot be cancelled
}

// cancelHandle is an llmux_cancel that any goroutine may trigger until the
// call it was given to has returned and it is freed (then triggering does
// nothing): the lock keeps a trigger from racing with the free.
type cancelHandle struct {
	mu sync.Mutex
	c  *C.llmux_cancel
}

// newCancel returns a handle, or nil when libllmux cannot allocate one (the
// call then cannot be cancelled, as without a context).
func newCancel() *cancelHandle {
	c := C.llmuxgo_cancel_new()
	if c == nil {
		return nil
	}
	return &cancelHandle{c: c}
}

// trigger stops the call within milliseconds, also while it waits on a
// provider. nil-safe.
func (h *cancelHandle) trigger() {
	if h == nil {
		return
	}
	h.mu.Lock()
	C.llmux_cancel_trigger(h.c) // NULL (freed) is a no-op
	h.mu.Unlock()
}

// free releases the handle; the C call it was given to must have returned.
func (h *cancelHandle) free() {
	if h == nil {
		return
	}
	h.mu.Lock()
	C.llmux_cancel_free(h.c)
	h.c = nil
	h.mu.Unlock()
}

// ptr is the C handle for the call's options (NULL for nil).
func (h *cancelHandle) ptr() *C.llmux_cancel {
	if h == nil {
		return nil
	}
	return h.c
}

// resultData is a copy of everything an llmux_result held, in Go memory.
type resultData struct {
	status           Status
	httpStatus       int
	json             []byte
	errMsg           string
	provider         string
	model            string
	trace            []byte
	costUSD          float64
	promptTokens     int64
	completionTokens int64
}

// cString returns a NUL-terminated copy of s in Go memory (nil for ""). The
// C side only borrows it for the duration of a call (the header promises that
// input strings are copied), so Go memory is safe; callers keep the backing
// array reachable through the returned pointer and runtime.KeepAlive.
func cString(s string) *C.char {
	if s == "" {
		return nil
	}
	b := make([]byte, len(s)+1)
	copy(b, s)
	return (*C.char)(unsafe.Pointer(&b[0]))
}

// cBytes is cString for a byte slice.
func cBytes(p []byte) ([]byte, *C.char) {
	b := cRequest(p)
	return b, (*C.char)(unsafe.Pointer(&b[0]))
}

// cRequest returns a NUL-terminated copy of p, owned by the binding, so a
// caller may reuse p while a call that outlives its context still runs.
func cRequest(p []byte) []byte {
	b := make([]byte, len(p)+1)
	copy(b, p)
	return b
}

// hasNUL reports whether a string passed to C would be cut short.
func hasNUL(s string) bool { return strings.IndexByte(s, 0) >= 0 }

func cVersion() string { return C.GoString(C.llmux_version()) }

func cStrerror(status int) string { return C.GoString(C.llmux_strerror(C.int(status))) }

func cOpen(config []byte) (*cgw, error) {
	buf, cfg := cBytes(config)
	var errbuf [errbufLen]byte
	var gw *C.llmux
	rc := C.llmux_open(&gw, cfg, (*C.char)(unsafe.Pointer(&errbuf[0])), C.size_t(len(errbuf)))
	runtime.KeepAlive(buf)
	if rc != C.LLMUX_OK {
		return nil, openError(Status(rc), cErrbuf(errbuf[:]))
	}
	return gw, nil
}

func cOpenFile(path string) (*cgw, error) {
	cpath := cString(path)
	var errbuf [errbufLen]byte
	var gw *C.llmux
	rc := C.llmux_open_file(&gw, cpath, (*C.char)(unsafe.Pointer(&errbuf[0])), C.size_t(len(errbuf)))
	runtime.KeepAlive(cpath)
	if rc != C.LLMUX_OK {
		return nil, openError(Status(rc), cErrbuf(errbuf[:]))
	}
	return gw, nil
}

func cErrbuf(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

func cClose(gw *cgw) { C.llmux_close(gw) }

// cChat runs one blocking llmux_chat and copies its result into Go memory.
// request must be NUL-terminated (see cRequest).
func cChat(gw *cgw, names *nameCache, request []byte, o *callOpts) resultData {
	req := (*C.char)(unsafe.Pointer(&request[0]))
	key, wf, task := cString(o.key), cString(o.workflow), cString(o.task)
	v := C.llmuxgo_chat(gw, req, key, wf, task, C.long(o.timeoutMS), o.cancel.ptr(), cBool(o.trace))
	runtime.KeepAlive(request)
	runtime.KeepAlive(key)
	runtime.KeepAlive(wf)
	runtime.KeepAlive(task)
	return takeResult(&v, names)
}

// cChatStream runs one llmux_chat_stream; handle is a runtime/cgo.Handle whose
// value the trampoline in callbacks.go hands each chunk to.
func cChatStream(gw *cgw, names *nameCache, request []byte, o *callOpts, handle uintptr) resultData {
	req := (*C.char)(unsafe.Pointer(&request[0]))
	key, wf, task := cString(o.key), cString(o.workflow), cString(o.task)
	v := C.llmuxgo_chat_stream(gw, req, key, wf, task, C.long(o.timeoutMS), o.cancel.ptr(),
		cBool(o.trace), C.uintptr_t(handle))
	runtime.KeepAlive(request)
	runtime.KeepAlive(key)
	runtime.KeepAlive(wf)
	runtime.KeepAlive(task)
	return takeResult(&v, names)
}

func cBool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// takeResult copies the result a call's shim read into v into Go memory and
// frees it.
func takeResult(v *C.llmuxgo_view, names *nameCache) resultData {
	if v.res == nil {
		st := Status(v.rc)
		if st == StatusOK {
			st = StatusInternal
		}
		return resultData{status: st, errMsg: cStrerror(int(st)), costUSD: -1,
			promptTokens: -1, completionTokens: -1}
	}
	d := resultData{
		status:           Status(v.status),
		httpStatus:       int(v.http_status),
		json:             C.GoBytes(unsafe.Pointer(v.json), C.int(v.json_len)),
		errMsg:           goString(v.error),
		costUSD:          float64(v.cost_usd),
		promptTokens:     int64(v.prompt_tokens),
		completionTokens: int64(v.completion_tokens),
	}
	d.provider, d.model = names.get(cBytesView(v.provider, v.provider_len), cBytesView(v.model, v.model_len))
	if v.trace_len > 0 {
		d.trace = C.GoBytes(unsafe.Pointer(v.trace), C.int(v.trace_len))
	}
	C.llmux_result_free(v.res)
	return d
}

// cBytesView is the C memory p[:n], borrowed (nil for none).
func cBytesView(p *C.char, n C.size_t) []byte {
	if p == nil || n == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(p)), int(n))
}

// nameCache keeps the provider and model names of a gateway's last answer,
// so that the same names (they come from the config) are not allocated again
// for every call.
type nameCache struct{ last atomic.Pointer[[2]string] }

// get returns provider and model as strings, reusing the cached ones when
// they are equal.
func (c *nameCache) get(provider, model []byte) (string, string) {
	if last := c.last.Load(); last != nil && string(provider) == last[0] && string(model) == last[1] {
		return last[0], last[1]
	}
	names := &[2]string{string(provider), string(model)}
	c.last.Store(names)
	return names[0], names[1]
}

func goString(p *C.char) string {
	if p == nil {
		return ""
	}
	return C.GoString(p)
}

// takeText copies a string llmux allocated and frees it.
func takeText(out *C.char) []byte {
	if out == nil {
		return nil
	}
	b := C.GoBytes(unsafe.Pointer(out), C.int(C.strlen(out)))
	C.llmux_free(unsafe.Pointer(out))
	return b
}

// cLedgerText calls llmux_spend_period_json (export false: first is group_by)
// or llmux_ledger_export (export true: first is the format) over [since,
// until) ("" leaves a side open) and returns the text.
func cLedgerText(gw *cgw, export bool, first, since, until string) ([]byte, Status) {
	cfirst, csince, cuntil := cString(first), cString(since), cString(until)
	var out *C.char
	var rc C.int
	if export {
		rc = C.llmux_ledger_export(gw, cfirst, csince, cuntil, &out)
	} else {
		rc = C.llmux_spend_period_json(gw, cfirst, csince, cuntil, &out)
	}
	runtime.KeepAlive(cfirst)
	runtime.KeepAlive(csince)
	runtime.KeepAlive(cuntil)
	text := takeText(out)
	if rc != C.LLMUX_OK {
		return nil, Status(rc)
	}
	if text == nil {
		text = []byte{}
	}
	return text, StatusOK
}

func cCompact(gw *cgw) Status { return Status(C.llmux_ledger_compact(gw)) }

// cSpend returns the spend report JSON.
func cSpend(gw *cgw, groupBy string) ([]byte, Status) {
	cgroup := cString(groupBy)
	var out *C.char
	rc := C.llmux_spend_json(gw, cgroup, &out)
	runtime.KeepAlive(cgroup)
	var report []byte
	if out != nil {
		report = C.GoBytes(unsafe.Pointer(out), C.int(C.strlen(out)))
		C.llmux_free(unsafe.Pointer(out))
	}
	if rc != C.LLMUX_OK {
		return nil, Status(rc)
	}
	if report == nil {
		return nil, StatusInternal
	}
	return report, StatusOK
}

// cKeyAdd runs llmux_key_add; the message says why it failed.
func cKeyAdd(gw *cgw, id string, spec []byte) (Status, string) {
	cid := cString(id)
	bspec, cspec := cBytes(spec)
	buf := make([]byte, errbufLen)
	rc := C.llmux_key_add(gw, cid, cspec, (*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)))
	runtime.KeepAlive(cid)
	runtime.KeepAlive(bspec)
	return Status(rc), cErrbuf(buf)
}

func cKeyRotate(gw *cgw, id, secret string) (Status, string) {
	cid, csecret := cString(id), cString(secret)
	buf := make([]byte, errbufLen)
	rc := C.llmux_key_rotate(gw, cid, csecret, (*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)))
	runtime.KeepAlive(cid)
	runtime.KeepAlive(csecret)
	return Status(rc), cErrbuf(buf)
}

func cKeyRevoke(gw *cgw, id string) Status {
	cid := cString(id)
	rc := C.llmux_key_revoke(gw, cid)
	runtime.KeepAlive(cid)
	return Status(rc)
}

// cJSONOut reads one of the gateway's JSON reports (keys or budgets).
func cJSONOut(gw *cgw, budgets bool) ([]byte, Status) {
	var out *C.char
	var rc C.int
	if budgets {
		rc = C.llmux_budgets_json(gw, &out)
	} else {
		rc = C.llmux_keys_json(gw, &out)
	}
	var doc []byte
	if out != nil {
		doc = C.GoBytes(unsafe.Pointer(out), C.int(C.strlen(out)))
		C.llmux_free(unsafe.Pointer(out))
	}
	return doc, Status(rc)
}

// cSetAlert hands the gateway the alert trampoline with handle as payload
// (0: no callback).
func cSetAlert(gw *cgw, handle uintptr) Status {
	return Status(C.llmuxgo_set_alert(gw, C.uintptr_t(handle)))
}
