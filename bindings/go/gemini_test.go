package llmux_test

// A Gemini target through the Go binding: a plain call, a tool call and its
// result turn (the thought signature rides in the tool-call id), a stream that
// agrees with the unstreamed call, and Gemini's errors as llmux error classes.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	llmux "github.com/llmux/llmux/bindings/go"
)

func geminiConfig(dep, model string) *testConfig {
	return &testConfig{
		Providers: map[string]provider{"g": {Type: "gemini", BaseURL: simURL + "/" + dep + "/v1beta"}},
		Models:    map[string]map[string][]target{"smart": {"targets": {{Provider: "g", Model: model}}}},
		Defaults:  map[string]int64{"timeout_ms": 10000, "connect_timeout_ms": 2000},
	}
}

func TestGeminiPlain(t *testing.T) {
	t.Parallel()
	dep := deployment(t, "g")
	gw := open(t, geminiConfig(dep, "gemini-sim"))
	resp := mustChat(t, gw, ask("hello gemini"))
	if got, want := resp.Text(), "["+dep+"] hello gemini"; got != want {
		t.Errorf("Text() = %q, want %q", got, want)
	}
	if resp.Choices[0].FinishReason != "stop" || resp.Usage.PromptTokens != 3 || resp.Usage.CompletionTokens != 3 {
		t.Errorf("answer %s", resp.Raw)
	}
	if st := simGet(t, dep); st.LastRequest.Path != "/"+dep+"/v1beta/models/gemini-sim:generateContent" {
		t.Errorf("path %q", st.LastRequest.Path)
	}
}

func TestGeminiToolCallRoundTrip(t *testing.T) {
	t.Parallel()
	dep := deployment(t, "g")
	gw := open(t, geminiConfig(dep, "gemini-sim"))
	req := ask("find it")
	req.Tools = []llmux.Tool{llmux.FunctionTool("lookup", "", nil)}
	req.ToolChoice = llmux.ToolChoiceFunction("lookup")
	resp := mustChat(t, gw, req)
	calls := resp.ToolCalls()
	if len(calls) != 1 || calls[0].Function.Name != "lookup" || calls[0].Function.Arguments != `{"echo":"find it"}` ||
		!strings.HasSuffix(calls[0].ID, "__ts__c2ltLXNpZwlookup==") || resp.Choices[0].FinishReason != "tool_calls" {
		t.Fatalf("first turn %s", resp.Raw)
	}
	next := &llmux.ChatRequest{Model: "smart", Tools: req.Tools, Messages: []llmux.Message{
		llmux.UserMessage("find it"),
		{Role: "assistant", ToolCalls: calls},
		llmux.ToolMessage(calls[0].ID, `{"found":true}`),
	}}
	resp = mustChat(t, gw, next)
	if resp.Choices[0].FinishReason != "stop" {
		t.Errorf("second turn %s", resp.Raw)
	}
	var sent struct {
		Contents []struct {
			Role  string            `json:"role"`
			Parts []json.RawMessage `json:"parts"`
		} `json:"contents"`
	}
	if err := json.Unmarshal(simGet(t, dep).LastRequest.Body, &sent); err != nil {
		t.Fatal(err)
	}
	if len(sent.Contents) != 3 || !strings.Contains(string(sent.Contents[1].Parts[0]), `"thoughtSignature":"c2ltLXNpZwlookup=="`) ||
		string(sent.Contents[2].Parts[0]) != `{"functionResponse":{"name":"lookup","response":{"found":true}}}` {
		t.Errorf("provider got %s", simGet(t, dep).LastRequest.Body)
	}
}

func TestGeminiStreamAgrees(t *testing.T) {
	t.Parallel()
	dep := deployment(t, "g")
	gw := open(t, geminiConfig(dep, "gemini-cached"))
	plain := mustChat(t, gw, ask("one two three"))
	s, err := gw.ChatStream(context.Background(), ask("one two three"))
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	n := 0
	for c, err := range s.All() {
		if err != nil {
			t.Fatal(err)
		}
		n++
		for _, ch := range c.Choices {
			text.WriteString(ch.Delta.Content)
		}
	}
	resp, err := s.Result()
	if err != nil {
		t.Fatal(err)
	}
	if n != 4 || text.String() != plain.Text() || resp.Text() != plain.Text() ||
		resp.Choices[0].FinishReason != plain.Choices[0].FinishReason ||
		resp.Meta.PromptTokens != plain.Meta.PromptTokens || resp.Meta.CompletionTokens != plain.Meta.CompletionTokens ||
		resp.Usage.PromptTokensDetails.CachedTokens != 2 || plain.Usage.PromptTokensDetails.CachedTokens != 2 {
		t.Errorf("%d chunks %q\nstreamed %s\nplain %s", n, text.String(), resp.Raw, plain.Raw)
	}
}

func TestGeminiErrors(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		status int
		want   error
	}{{400, llmux.ErrBadRequest}, {403, llmux.ErrPermission}, {404, llmux.ErrNotFound},
		{429, llmux.ErrRateLimit}, {500, llmux.ErrProvider}, {503, llmux.ErrProvider}} {
		dep := deployment(t, "g")
		simPut(t, dep, fmt.Sprintf(`{"faults":[{"type":"status","status":%d}]}`, c.status))
		gw := open(t, geminiConfig(dep, "gemini-sim"))
		_, err := gw.Chat(context.Background(), ask("x"))
		var e *llmux.Error
		if !errors.Is(err, c.want) || !errors.As(err, &e) || e.HTTPStatus != c.status {
			t.Errorf("HTTP %d: %v", c.status, err)
		}
	}
	gw := open(t, geminiConfig(deployment(t, "g"), "gemini-blocked"))
	if _, err := gw.Chat(context.Background(), ask("x")); !errors.Is(err, llmux.ErrContentFilter) {
		t.Errorf("blocked prompt: %v", err)
	}
}
