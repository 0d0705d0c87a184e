// Package llmux is the Go binding of libllmux, an OpenAI-compatible LLM
// gateway that runs inside your process.
//
// Hand a Gateway one OpenAI Chat Completions request; it resolves the
// requested model through the config's aliases, sends the request to a
// provider, falls back to the next target when one fails, and returns the
// chat.completion together with Meta: the provider and model that answered,
// the cost, and (with WithTrace, or for a failed call) a trace of every
// attempt.
//
//	gw, err := llmux.OpenFile("llmux.json")
//	if err != nil { ... }
//	defer gw.Close()
//	resp, err := gw.Chat(ctx, &llmux.ChatRequest{
//		Model:    "smart",
//		Messages: []llmux.Message{llmux.UserMessage("hi")},
//	}, llmux.WithTask("greet"))
//	switch {
//	case errors.Is(err, llmux.ErrRateLimit): ...
//	case err != nil: ...
//	}
//	fmt.Println(resp.Meta.Model, resp.Text())
//
// The package links libllmux through pkg-config (package "llmux"), so build
// with PKG_CONFIG_PATH pointing at its llmux.pc and CGO_ENABLED=1.
//
// Errors of calls are *Error values that carry the class (a Status), the
// message, the HTTP status and the trace; every error class has a sentinel
// (ErrTimeout, ErrRateLimit, ...) for errors.Is. All error information comes
// from the C result object, never from thread-local state, so a Gateway is
// safe for concurrent use by any number of goroutines.
//
// See docs/go.md in the llmux repository for the whole guide.
package llmux
