package llmux

// This file is the only place that calls into libllmux. Small static C shims
// in the preamble hide what cgo cannot express directly (the options struct,
// the function-pointer callback, the void* payload) and read a whole result
// in one crossing. Everything else in the package is plain Go.

/*
#cgo pkg-config: llmux
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

static int llmuxgo_fill_options(llmux_call_options *o, const char *key, const char *workflow,
                                const char *task, long timeout_ms) {
	int rc = llmux_call_options_init(o, LLMUX_CALL_OPTIONS_VERSION);
	if (rc != LLMUX_OK)
		return rc;
	o->key = key;
	o->workflow = workflow;
	o->task = task;
	o->timeout_ms = timeout_ms;
	return LLMUX_OK;
}

// Everything a result holds, read in one cgo crossing. The pointers are
// borrowed from the result and live until llmux_result_free.
typedef struct llmuxgo_view {
	int status;
	int http_status;
	const char *json;
	size_t json_len;
	const char *error;
	const char *provider;
	const char *model;
	const char *trace;
	size_t trace_len;
	double cost_usd;
	long prompt_tokens;
	long completion_tokens;
} llmuxgo_view;

// The trace is built on demand (llmux_result_trace_json), so it is read only
// when the caller asked for it or the call failed.
static void llmuxgo_view_result(const llmux_result *r, int want_trace, llmuxgo_view *v) {
	v->status = llmux_result_status(r);
	v->http_status = llmux_result_http_status(r);
	v->json = llmux_result_json(r);
	v->json_len = v->json ? strlen(v->json) : 0;
	v->error = llmux_result_error(r);
	v->provider = llmux_result_provider(r);
	v->model = llmux_result_model(r);
	v->trace = NULL;
	v->trace_len = 0;
	if (want_trace || v->status != LLMUX_OK) {
		v->trace = llmux_result_trace_json(r);
		v->trace_len = v->trace ? strlen(v->trace) : 0;
	}
	v->cost_usd = llmux_result_cost_usd(r);
	v->prompt_tokens = llmux_result_prompt_tokens(r);
	v->completion_tokens = llmux_result_completion_tokens(r);
}

// The chat shims make the call and read its result in the same crossing.
static int llmuxgo_chat(llmux *gw, const char *request_json, const char *key,
                        const char *workflow, const char *task, long timeout_ms, int want_trace,
                        llmux_result **out, llmuxgo_view *v) {
	llmux_call_options o;
	int rc = llmuxgo_fill_options(&o, key, workflow, task, timeout_ms);
	if (rc != LLMUX_OK) {
		*out = NULL;
		return rc;
	}
	rc = llmux_chat(gw, request_json, &o, out);
	if (*out)
		llmuxgo_view_result(*out, want_trace, v);
	return rc;
}

static int llmuxgo_chat_stream(llmux *gw, const char *request_json, const char *key,
                               const char *workflow, const char *task, long timeout_ms,
                               int want_trace, uintptr_t handle, llmux_result **out,
                               llmuxgo_view *v) {
	llmux_call_options o;
	int rc = llmuxgo_fill_options(&o, key, workflow, task, timeout_ms);
	if (rc != LLMUX_OK) {
		*out = NULL;
		return rc;
	}
	rc = llmux_chat_stream(gw, request_json, &o, llmuxgo_chunk_trampoline, (void *)handle, out);
	if (*out)
		llmuxgo_view_result(*out, want_trace, v);
	return rc;
}
*/
import "C"

import (
	"bytes"
	"runtime"
	"strings"
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
	trace               bool      // read the trace of a successful call too
	ctxDeadline         time.Time // set when timeoutMS comes from the context's deadline
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
func cChat(gw *cgw, request []byte, o *callOpts) resultData {
	req := (*C.char)(unsafe.Pointer(&request[0]))
	key, wf, task := cString(o.key), cString(o.workflow), cString(o.task)
	var res *C.llmux_result
	var v C.llmuxgo_view
	rc := C.llmuxgo_chat(gw, req, key, wf, task, C.long(o.timeoutMS), cBool(o.trace), &res, &v)
	runtime.KeepAlive(request)
	runtime.KeepAlive(key)
	runtime.KeepAlive(wf)
	runtime.KeepAlive(task)
	return takeResult(res, rc, &v)
}

// cChatStream runs one llmux_chat_stream; handle is a runtime/cgo.Handle whose
// value the trampoline in callbacks.go hands each chunk to.
func cChatStream(gw *cgw, request []byte, o *callOpts, handle uintptr) resultData {
	req := (*C.char)(unsafe.Pointer(&request[0]))
	key, wf, task := cString(o.key), cString(o.workflow), cString(o.task)
	var res *C.llmux_result
	var v C.llmuxgo_view
	rc := C.llmuxgo_chat_stream(gw, req, key, wf, task, C.long(o.timeoutMS), cBool(o.trace),
		C.uintptr_t(handle), &res, &v)
	runtime.KeepAlive(request)
	runtime.KeepAlive(key)
	runtime.KeepAlive(wf)
	runtime.KeepAlive(task)
	return takeResult(res, rc, &v)
}

func cBool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// takeResult copies a result, read into v by the call's shim, into Go memory
// and frees it.
func takeResult(res *C.llmux_result, rc C.int, v *C.llmuxgo_view) resultData {
	if res == nil {
		st := Status(rc)
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
		provider:         goString(v.provider),
		model:            goString(v.model),
		costUSD:          float64(v.cost_usd),
		promptTokens:     int64(v.prompt_tokens),
		completionTokens: int64(v.completion_tokens),
	}
	if v.trace_len > 0 {
		d.trace = C.GoBytes(unsafe.Pointer(v.trace), C.int(v.trace_len))
	}
	C.llmux_result_free(res)
	return d
}

func goString(p *C.char) string {
	if p == nil {
		return ""
	}
	return C.GoString(p)
}

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
