package llmux

// The exported trampoline of the call log lives alone in this file: a cgo
// file with //export may only declare, not define, C functions in its preamble.

/*
#include <stddef.h>
#include <stdint.h>
*/
import "C"

import "unsafe"

// llmuxgoOnLog is the llmux_log_cb of every gateway that has a log callback.
// It runs on the gateway's log writer thread. token names the gateway's Go
// function in logFuncs (see observe.go); a record for a token that is gone is
// dropped. The record is borrowed for the callback, so it is copied.
//
//export llmuxgoOnLog
func llmuxgoOnLog(record *C.char, n C.size_t, token C.uintptr_t) {
	fn, ok := logFuncs.Load(uintptr(token))
	if !ok {
		return
	}
	fn.(func([]byte))(C.GoBytes(unsafe.Pointer(record), C.int(n)))
}
