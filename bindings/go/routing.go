package llmux

/*
#include <stdlib.h>
#include <string.h>
#include <llmux.h>

static int llmuxgo_route(llmux *gw, const char *req, const char *key, const char *workflow,
                         const char *task, char **out)
{
    llmux_call_options o;
    llmux_call_options_init(&o, LLMUX_CALL_OPTIONS_VERSION);
    o.key = key;
    o.workflow = workflow;
    o.task = task;
    return llmux_route_json(gw, req, &o, out);
}
*/
import "C"

import (
	"encoding/json"
	"unsafe"
)

// RouteOptions are the call options a dry run routes with.
type RouteOptions struct {
	Key, Workflow, Task string
}

// RouteCandidate is a target the router would try (or passed over, with Reason).
type RouteCandidate struct {
	Provider string `json:"provider"`
	Model    string `json:"model"`
	Reason   string `json:"reason,omitempty"`
}

// RoutePlan is what the router would decide for a request (see docs/routing.md).
type RoutePlan struct {
	Model      string           `json:"model"`
	Route      string           `json:"route"`
	Alias      *string          `json:"alias"`
	Rule       *int             `json:"rule"`
	Strategy   string           `json:"strategy"`
	Candidates []RouteCandidate `json:"candidates"`
	Skipped    []RouteCandidate `json:"skipped"`
}

// TargetHealth is one alias target's health (routing.cooldown in docs/config.md).
type TargetHealth struct {
	Alias          string   `json:"alias"`
	Provider       string   `json:"provider"`
	Model          string   `json:"model"`
	State          string   `json:"state"` // ok, cooldown, half_open, probing
	InFlight       int      `json:"in_flight"`
	Failures       int      `json:"failures"`
	CooldownMsLeft float64  `json:"cooldown_ms_left"`
	LatencyMs      *float64 `json:"latency_ms"`
}

func takeJSON(out *C.char) []byte {
	if out == nil {
		return nil
	}
	b := C.GoBytes(unsafe.Pointer(out), C.int(C.strlen(out)))
	C.llmux_free(unsafe.Pointer(out))
	return b
}

// Route is a dry run: the route llmux would take for this request JSON,
// calling no provider.
func (g *Gateway) Route(request []byte, o RouteOptions) (*RoutePlan, error) {
	if hasNUL(string(request)) || hasNUL(o.Key) || hasNUL(o.Workflow) || hasNUL(o.Task) {
		return nil, argError("the request or an option contains a NUL byte")
	}
	ptr, err := g.acquire()
	if err != nil {
		return nil, err
	}
	creq := C.CString(string(request))
	defer C.free(unsafe.Pointer(creq))
	opt := func(s string) *C.char {
		if s == "" {
			return nil
		}
		return C.CString(s)
	}
	ckey, cwf, ctask := opt(o.Key), opt(o.Workflow), opt(o.Task)
	defer C.free(unsafe.Pointer(ckey))
	defer C.free(unsafe.Pointer(cwf))
	defer C.free(unsafe.Pointer(ctask))
	var out *C.char
	rc := C.llmuxgo_route(ptr, creq, ckey, cwf, ctask, &out)
	g.release()
	raw := takeJSON(out)
	if rc != C.LLMUX_OK {
		var e struct {
			Error struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		_ = json.Unmarshal(raw, &e)
		return nil, &Error{Code: Status(rc), Message: e.Error.Message, Body: raw}
	}
	plan := &RoutePlan{}
	if err := json.Unmarshal(raw, plan); err != nil {
		return nil, &Error{Code: StatusInternal, Body: raw, Message: "llmux-go: cannot decode the route: " + err.Error()}
	}
	return plan, nil
}

// Health lists every alias target's health.
func (g *Gateway) Health() ([]TargetHealth, error) {
	ptr, err := g.acquire()
	if err != nil {
		return nil, err
	}
	var out *C.char
	rc := C.llmux_health_json(ptr, &out)
	g.release()
	raw := takeJSON(out)
	if rc != C.LLMUX_OK {
		return nil, &Error{Code: Status(rc), Message: "health: " + Status(rc).String()}
	}
	var h []TargetHealth
	if err := json.Unmarshal(raw, &h); err != nil {
		return nil, &Error{Code: StatusInternal, Body: raw, Message: "llmux-go: cannot decode the health: " + err.Error()}
	}
	return h, nil
}
