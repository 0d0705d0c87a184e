package llmux_test

// Calls through an Anthropic target: llmux translates the request to the
// Messages API (llmux-sim's /{deployment}/v1/messages) and the answer, the
// stream and the errors back to OpenAI shapes.

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	llmux "github.com/llmux/llmux/bindings/go"
)

// openAnthropic opens a gateway whose alias "smart" is one Anthropic target
// on dep, which requires the test key (sent as x-api-key).
func openAnthropic(t *testing.T, dep string) *llmux.Gateway {
	t.Helper()
	simPut(t, dep, `{"require_key":"`+testKey+`"}`)
	c := chainConfig(dep)
	c.Providers["p0"] = provider{Type: "anthropic", BaseURL: simURL + "/" + dep, APIKeyEnv: keyEnv}
	return open(t, c)
}

func TestAnthropicChat(t *testing.T) {
	t.Parallel()
	dep := deployment(t, "a")
	gw := openAnthropic(t, dep)
	req := ask("hello there")
	req.Messages = append([]llmux.Message{llmux.SystemMessage("be brief")}, req.Messages...)

	resp := mustChat(t, gw, req)

	if got, want := resp.Text(), "["+dep+"] hello there"; got != want {
		t.Errorf("Text() = %q, want %q", got, want)
	}
	if resp.ID != "msg_sim_"+dep+"_1" || resp.Model != "m-0" || resp.Choices[0].FinishReason != "stop" {
		t.Errorf("response = %s", resp.Raw)
	}
	if u := resp.Usage; u == nil || u.PromptTokens != 5 || u.CompletionTokens != 3 || u.TotalTokens != 8 {
		t.Errorf("usage = %+v", resp.Usage)
	}
	st := simGet(t, dep)
	if st.LastRequest.Path != "/"+dep+"/v1/messages" || st.LastRequest.Authorization != "Bearer "+testKey {
		t.Errorf("simulator saw %q with key %q", st.LastRequest.Path, st.LastRequest.Authorization)
	}
	want := `{"model":"m-0","max_tokens":4096,"system":"be brief","messages":[{"role":"user","content":"hello there"}]}`
	if !jsonEqual(st.LastRequest.Body, []byte(want)) {
		t.Errorf("provider got %s, want %s", st.LastRequest.Body, want)
	}
}

func TestAnthropicToolRoundTrip(t *testing.T) {
	t.Parallel()
	dep := deployment(t, "a")
	gw := openAnthropic(t, dep)
	params := json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"}}}`)
	tools := []llmux.Tool{llmux.FunctionTool("get_weather", "Weather for a city", params)}
	req := ask("Oslo")
	req.Tools = tools
	req.ToolChoice = "required"

	resp := mustChat(t, gw, req)
	calls := resp.ToolCalls()
	if len(calls) != 1 || calls[0].ID != "toolu_sim_1" || calls[0].Function.Name != "get_weather" ||
		calls[0].Function.Arguments != `{"echo":"Oslo"}` || resp.Choices[0].FinishReason != "tool_calls" {
		t.Fatalf("response = %s", resp.Raw)
	}
	next := &llmux.ChatRequest{
		Model: "smart",
		Tools: tools,
		Messages: []llmux.Message{
			llmux.UserMessage("Oslo"),
			resp.Choices[0].Message,
			llmux.ToolMessage(calls[0].ID, "-3C"),
		},
	}
	resp = mustChat(t, gw, next)
	if resp.Text() != "["+dep+"] -3C" {
		t.Errorf("Text() = %q", resp.Text())
	}
	var sent struct {
		Messages []struct {
			Role    string          `json:"role"`
			Content json.RawMessage `json:"content"`
		} `json:"messages"`
	}
	json.Unmarshal(simGet(t, dep).LastRequest.Body, &sent)
	if len(sent.Messages) != 3 || sent.Messages[2].Role != "user" ||
		!jsonEqual(sent.Messages[2].Content, []byte(`[{"type":"tool_result","tool_use_id":"toolu_sim_1","content":"-3C"}]`)) {
		t.Errorf("provider got %s", simGet(t, dep).LastRequest.Body)
	}
}

func TestAnthropicStream(t *testing.T) {
	t.Parallel()
	dep := deployment(t, "a")
	gw := openAnthropic(t, dep)
	plain := mustChat(t, gw, ask("the quick brown fox"))
	req := ask("the quick brown fox")
	req.StreamOptions = &llmux.StreamOptions{IncludeUsage: true}

	s, err := gw.ChatStream(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var text strings.Builder
	n := 0
	for s.Next() {
		text.WriteString(s.Chunk().Text())
		n++
	}
	if err := s.Err(); err != nil {
		t.Fatalf("Err() = %v", err)
	}
	if text.String() != plain.Text() {
		t.Errorf("streamed %q, unstreamed %q", text.String(), plain.Text())
	}
	// role chunk, 5 words, finish chunk, usage chunk
	if n != 8 {
		t.Errorf("%d chunks, want 8", n)
	}
	resp, err := s.Result()
	if err != nil {
		t.Fatal(err)
	}
	if resp.Text() != plain.Text() || resp.Choices[0].FinishReason != "stop" || resp.Usage == nil ||
		*resp.Usage != *plain.Usage {
		t.Errorf("assembled %s, unstreamed %s", resp.Raw, plain.Raw)
	}
}

func TestAnthropicStreamToolCall(t *testing.T) {
	t.Parallel()
	dep := deployment(t, "a")
	gw := openAnthropic(t, dep)
	req := ask("stream a call")
	req.Tools = []llmux.Tool{llmux.FunctionTool("lookup", "", nil)}
	req.ToolChoice = "required"
	s, err := gw.ChatStream(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// id and name come first, with empty arguments; the arguments follow in pieces
	var deltas []llmux.ToolCall
	for s.Next() {
		if ch := s.Chunk().Choices; len(ch) > 0 {
			deltas = append(deltas, ch[0].Delta.ToolCalls...)
		}
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	if len(deltas) != 3 || deltas[0].ID != "toolu_sim_1" || deltas[0].Function.Name != "lookup" ||
		deltas[0].Function.Arguments != "" || deltas[1].ID != "" || deltas[2].Function.Name != "" {
		t.Fatalf("tool call deltas %+v", deltas)
	}
	args := deltas[1].Function.Arguments + deltas[2].Function.Arguments
	if args != `{"echo":"stream a call"}` {
		t.Errorf("arguments %q", args)
	}
	resp, err := s.Result()
	if err != nil {
		t.Fatal(err)
	}
	if c := resp.ToolCalls(); len(c) != 1 || c[0].Function.Arguments != args ||
		resp.Choices[0].FinishReason != "tool_calls" {
		t.Errorf("assembled = %s", resp.Raw)
	}
}

func TestAnthropicErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		fault string
		code  llmux.Status
		word  string
	}{
		{`{"type":"status","status":529}`, llmux.StatusProvider, "overloaded_error"},
		{`{"type":"status","status":429,"retry_after":"0"}`, llmux.StatusRateLimit, "rate_limit_error"},
		{`{"type":"status","status":401}`, llmux.StatusAuth, "authentication_error"},
	}
	for _, tc := range cases {
		dep := deployment(t, "a")
		gw := openAnthropic(t, dep)
		simPut(t, dep, `{"require_key":"`+testKey+`","faults":[`+tc.fault+`]}`)
		_, err := gw.Chat(context.Background(), ask("x"))
		e := asError(t, err)
		if e.Code != tc.code || !strings.Contains(e.Message, tc.word) || strings.Contains(e.Message, testKey) {
			t.Errorf("%s: %v", tc.fault, err)
		}
	}
}
