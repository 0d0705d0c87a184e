package llmux

/*
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <llmux.h>

// Defined in logcb.go (//export llmuxgoOnLog).
extern void llmuxgoOnLog(char *record, size_t len, uintptr_t token);

static void llmuxgo_log_trampoline(const char *record, size_t len, void *user) {
	llmuxgoOnLog((char *)record, len, (uintptr_t)user);
}

// on = 0 removes the callback.
static int llmuxgo_set_log(llmux *gw, int on, uintptr_t token) {
	return llmux_set_log_callback(gw, on ? llmuxgo_log_trampoline : NULL, (void *)token);
}
*/
import "C"

import (
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// logFuncs maps a gateway's token to its log function. The C callback is
// handed the token, not a Go pointer; a token is forgotten when its gateway
// is closed (the C writer thread has stopped by then).
var (
	logFuncs   sync.Map // uintptr -> func([]byte)
	logTokens  atomic.Uintptr
	logTokenOf sync.Map // the C gateway's address -> uintptr (not *Gateway: the finalizer must still run)
)

// SetLogCallback has fn called with every record of the call log
// (docs/observability.md): a JSON object per attempt and per call, as bytes
// the function may keep. fn runs on the gateway's log writer thread (a C
// thread, never the goroutine that made the call); a slow fn delays no call
// (records it cannot keep up with are dropped and counted in
// llmux_log_dropped_total). fn nil removes it: when SetLogCallback returns,
// the previous fn is not running and will not be called again. It must not
// be called from fn itself.
func (g *Gateway) SetLogCallback(fn func(record []byte)) error {
	ptr, err := g.acquire()
	if err != nil {
		return err
	}
	defer g.release()
	key := uintptr(unsafe.Pointer(ptr))
	tok, loaded := logTokenOf.Load(key)
	if !loaded {
		tok, _ = logTokenOf.LoadOrStore(key, logTokens.Add(1))
	}
	token := tok.(uintptr)
	var rc C.int
	if fn != nil {
		logFuncs.Store(token, fn)
		rc = C.llmuxgo_set_log(ptr, 1, C.uintptr_t(token))
	} else {
		rc = C.llmuxgo_set_log(ptr, 0, 0)
		if rc == C.LLMUX_OK {
			logFuncs.Delete(token)
			logTokenOf.Delete(key)
		}
	}
	if rc != C.LLMUX_OK {
		return &Error{Code: Status(rc), Message: "set log callback: " + Status(rc).String()}
	}
	return nil
}

// forgetLog drops the log function of a C gateway that was just closed (its
// log writer has stopped), right after llmux_close.
func forgetLog(ptr *cgw) {
	if tok, ok := logTokenOf.LoadAndDelete(uintptr(unsafe.Pointer(ptr))); ok {
		logFuncs.Delete(tok)
	}
}

// FlushLog waits until the records of every call that has returned went
// through the sinks (file written, callback called, OTLP export tried), at
// most timeout; an *Error of class ErrTimeout after that.
func (g *Gateway) FlushLog(timeout time.Duration) error {
	ptr, err := g.acquire()
	if err != nil {
		return err
	}
	rc := C.llmux_log_flush(ptr, C.long(timeout/time.Millisecond))
	g.release()
	if rc != C.LLMUX_OK {
		return &Error{Code: Status(rc), Message: "flush log: " + Status(rc).String()}
	}
	return nil
}

// Metrics returns the gateway's metrics in the Prometheus text exposition
// format 0.0.4 (serve it as "text/plain; version=0.0.4"): calls, errors and
// attempts by provider, model and error class; tokens and cost by key, team
// and model; latency, time-to-first-token and overhead histograms; calls in
// flight; the call log's own counters.
func (g *Gateway) Metrics() (string, error) {
	ptr, err := g.acquire()
	if err != nil {
		return "", err
	}
	var out *C.char
	rc := C.llmux_metrics_text(ptr, &out)
	g.release()
	var text string
	if out != nil {
		text = C.GoStringN(out, C.int(C.strlen(out)))
		C.llmux_free(unsafe.Pointer(out))
	}
	if rc != C.LLMUX_OK {
		return "", &Error{Code: Status(rc), Message: "metrics: " + Status(rc).String()}
	}
	return text, nil
}
