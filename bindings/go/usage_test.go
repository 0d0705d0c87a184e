package llmux_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	llmux "github.com/llmux/llmux/bindings/go"
)

// usageJSON is an OpenAI usage object with every detail the binding types
// (and two it does not).
const usageJSON = `{"prompt_tokens":20,"completion_tokens":9,"total_tokens":29,` +
	`"prompt_tokens_details":{"cached_tokens":8,"audio_tokens":0,"cache_write_tokens":4},` +
	`"completion_tokens_details":{"reasoning_tokens":6,"audio_tokens":0}}`

var wantUsage = llmux.Usage{PromptTokens: 20, CompletionTokens: 9, TotalTokens: 29,
	PromptTokensDetails:     llmux.PromptTokensDetails{CachedTokens: 8, CacheWriteTokens: 4},
	CompletionTokensDetails: llmux.CompletionTokensDetails{ReasoningTokens: 6}}

// usageServer is an OpenAI-compatible provider on loopback whose answers,
// plain and streamed, carry usageJSON (the simulator's usage has no details).
func usageServer(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Stream bool `json:"stream"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		const head = `"id":"u1","created":1,"model":"m"`
		if !req.Stream {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{%s,"object":"chat.completion","choices":[{"index":0,`+
				`"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":%s}`, head, usageJSON)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		for _, rest := range []string{
			`"choices":[{"index":0,"delta":{"role":"assistant","content":"hi"},"finish_reason":null}]`,
			`"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]`,
			`"choices":[],"usage":` + usageJSON,
		} {
			fmt.Fprintf(w, "data: {%s,\"object\":\"chat.completion.chunk\",%s}\n\n", head, rest)
		}
		fmt.Fprint(w, "data: [DONE]\n\n")
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestUsageDetails(t *testing.T) {
	t.Parallel()
	c := chainConfig("unused")
	c.Providers["p0"] = provider{Type: "openai", BaseURL: usageServer(t).URL + "/v1"}
	gw := open(t, c)

	resp := mustChat(t, gw, ask("cached?"))
	if resp.Usage == nil || *resp.Usage != wantUsage {
		t.Errorf("Chat: usage %+v, want %+v", resp.Usage, wantUsage)
	}

	req := ask("cached, streamed?")
	req.StreamOptions = &llmux.StreamOptions{IncludeUsage: true}
	s, err := gw.ChatStream(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var last *llmux.Usage
	for chunk, err := range s.All() {
		if err != nil {
			t.Fatal(err)
		}
		if chunk.Usage != nil {
			last = chunk.Usage
		}
	}
	if last == nil || *last != wantUsage {
		t.Errorf("stream: usage chunk %+v, want %+v", last, wantUsage)
	}
	resp, err = s.Result()
	if err != nil {
		t.Fatal(err)
	}
	if resp.Usage == nil || *resp.Usage != wantUsage {
		t.Errorf("stream: assembled usage %+v, want %+v (%s)", resp.Usage, wantUsage, resp.Raw)
	}
}
