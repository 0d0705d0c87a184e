package llmux

// Exported callback trampolines live alone in this file: a cgo file with
// //export may only declare, not define, C functions in its preamble.

/*
#include <stddef.h>
#include <stdint.h>
*/
import "C"

import (
	"runtime/cgo"
	"unsafe"
)

// llmuxgoOnChunk is the llmux_chunk_cb of every streamed call. It runs on the
// goroutine that called llmux_chat_stream (the C library calls back on the
// calling thread). handle is the runtime/cgo.Handle of the call's *stream,
// passed through the C void* payload by the shim in capi.go. The chunk is
// borrowed for the duration of the callback, so it is copied before Go keeps
// it. Returning non-zero asks libllmux to stop the transfer.
//
//export llmuxgoOnChunk
func llmuxgoOnChunk(chunk *C.char, n C.size_t, handle C.uintptr_t) C.int {
	s, ok := cgo.Handle(handle).Value().(*stream)
	if !ok {
		return 1
	}
	if !s.deliver(C.GoBytes(unsafe.Pointer(chunk), C.int(n))) {
		return 1
	}
	return 0
}

// llmuxgoOnAlert is the llmux_alert_cb of every gateway with an alert
// callback. handle is the runtime/cgo.Handle of the gateway's *alertBox; the
// JSON is borrowed for the duration of the callback, so it is copied.
//
//export llmuxgoOnAlert
func llmuxgoOnAlert(alert *C.char, handle C.uintptr_t) {
	b, ok := cgo.Handle(handle).Value().(*alertBox)
	if !ok {
		return
	}
	b.deliver(C.GoString(alert))
}
