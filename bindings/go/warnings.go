package llmux

/*
#include <stdlib.h>
#include <string.h>
#include <llmux.h>
*/
import "C"

import (
	"encoding/json"
	"unsafe"
)

// Warnings lists what the gateway accepted at open but that will not work as
// written, each "json.path: message" (for example an api_key_env variable that
// is not set: calls to that provider fail and fall back). With "strict": true
// in the config, Open refuses such a config instead.
func (g *Gateway) Warnings() ([]string, error) {
	ptr, err := g.acquire()
	if err != nil {
		return nil, err
	}
	var out *C.char
	rc := C.llmux_warnings_json(ptr, &out)
	g.release()
	var raw []byte
	if out != nil {
		raw = C.GoBytes(unsafe.Pointer(out), C.int(C.strlen(out)))
		C.llmux_free(unsafe.Pointer(out))
	}
	if rc != C.LLMUX_OK {
		return nil, &Error{Code: Status(rc), Message: "warnings: " + Status(rc).String()}
	}
	var w []string
	if err := json.Unmarshal(raw, &w); err != nil {
		return nil, &Error{Code: StatusInternal, Body: raw,
			Message: "llmux-go: cannot decode the warnings: " + err.Error()}
	}
	return w, nil
}
