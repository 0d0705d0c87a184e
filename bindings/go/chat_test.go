package llmux_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	llmux "github.com/llmux/llmux/bindings/go"
)

func TestVersion(t *testing.T) {
	if v := llmux.Version(); !regexp.MustCompile(`^\d+\.\d+\.\d+`).MatchString(v) {
		t.Fatalf("Version() = %q, want MAJOR.MINOR.PATCH", v)
	}
}

func TestChatPlain(t *testing.T) {
	t.Parallel()
	dep := deployment(t, "a")
	gw := openChain(t, dep)

	resp := mustChat(t, gw, ask("hello there"))

	if got, want := resp.Text(), "["+dep+"] hello there"; got != want {
		t.Errorf("Text() = %q, want %q", got, want)
	}
	if resp.Meta.Provider != "p0" || resp.Meta.Model != "m-0" {
		t.Errorf("Meta provider/model = %q/%q, want p0/m-0", resp.Meta.Provider, resp.Meta.Model)
	}
	if resp.Meta.HTTPStatus != 200 {
		t.Errorf("Meta.HTTPStatus = %d, want 200", resp.Meta.HTTPStatus)
	}
	if usd, known := resp.Meta.Cost(); known || usd >= 0 {
		t.Errorf("Meta.Cost() = %v, %v; want unknown (negative) in this version", usd, known)
	}
	st := simGet(t, dep)
	if st.Requests != 1 || st.LastRequest.Path != "/"+dep+"/v1/chat/completions" {
		t.Errorf("simulator saw %d requests, last %q", st.Requests, st.LastRequest.Path)
	}
	var sent struct {
		Model    string          `json:"model"`
		Messages []llmux.Message `json:"messages"`
	}
	if err := json.Unmarshal(st.LastRequest.Body, &sent); err != nil {
		t.Fatal(err)
	}
	if sent.Model != "m-0" || len(sent.Messages) != 1 || sent.Messages[0].Content != "hello there" {
		t.Errorf("provider got %s, want model m-0 and the message", st.LastRequest.Body)
	}
}

func TestChatTypedResponse(t *testing.T) {
	t.Parallel()
	dep := deployment(t, "a")
	gw := openChain(t, dep)

	resp := mustChat(t, gw, ask("one two three four five"))

	if !strings.HasPrefix(resp.ID, "chatcmpl-sim-"+dep+"-") {
		t.Errorf("ID = %q", resp.ID)
	}
	if resp.Object != "chat.completion" || resp.Created == 0 || resp.Model != "m-0" {
		t.Errorf("object/created/model = %q/%d/%q", resp.Object, resp.Created, resp.Model)
	}
	if len(resp.Choices) != 1 {
		t.Fatalf("%d choices, want 1", len(resp.Choices))
	}
	c := resp.Choices[0]
	if c.Index != 0 || c.FinishReason != "stop" || c.Message.Role != "assistant" {
		t.Errorf("choice = %+v", c)
	}
	// prompt: ceil(23 bytes / 4) = 6; completion: 6 words ("[dep]" and five).
	if resp.Usage == nil || resp.Usage.PromptTokens != 6 || resp.Usage.CompletionTokens != 6 ||
		resp.Usage.TotalTokens != 12 {
		t.Errorf("Usage = %+v, want 6+6=12", resp.Usage)
	}
	if resp.Meta.PromptTokens != 6 || resp.Meta.CompletionTokens != 6 {
		t.Errorf("Meta tokens = %d/%d, want 6/6", resp.Meta.PromptTokens, resp.Meta.CompletionTokens)
	}
	var raw map[string]any
	if err := json.Unmarshal(resp.Raw, &raw); err != nil || raw["id"] != resp.ID {
		t.Errorf("Raw = %s (%v)", resp.Raw, err)
	}
}

func TestChatJSON(t *testing.T) {
	t.Parallel()
	dep := deployment(t, "a")
	gw := openChain(t, dep)
	req := []byte(`{"model":"smart","messages":[{"role":"user","content":"raw json"}],"temperature":0.5}`)

	resp, err := gw.ChatJSON(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Text() != "["+dep+"] raw json" {
		t.Errorf("Text() = %q", resp.Text())
	}
	var sent map[string]any
	json.Unmarshal(simGet(t, dep).LastRequest.Body, &sent)
	if sent["temperature"] != 0.5 {
		t.Errorf("temperature not passed on: %v", sent)
	}
}

func TestChatRequestFields(t *testing.T) {
	t.Parallel()
	dep := deployment(t, "a")
	gw := openChain(t, dep)
	temp, maxTok := 0.25, 64
	req := &llmux.ChatRequest{
		Model: "smart",
		Messages: []llmux.Message{
			llmux.SystemMessage("be brief"),
			{Role: "user", Parts: []llmux.ContentPart{llmux.TextPart("part one"),
				llmux.ImagePart("https://example.com/a.png"), llmux.TextPart("part two")}},
		},
		Temperature: &temp,
		MaxTokens:   &maxTok,
		Stop:        []string{"END"},
		Extra:       map[string]json.RawMessage{"metadata": json.RawMessage(`{"trace":"x"}`)},
	}

	resp := mustChat(t, gw, req)

	if got, want := resp.Text(), "["+dep+"] part one part two"; got != want {
		t.Errorf("Text() = %q, want %q", got, want)
	}
	var sent struct {
		Messages    []llmux.Message `json:"messages"`
		Temperature float64         `json:"temperature"`
		MaxTokens   int             `json:"max_tokens"`
		Stop        []string        `json:"stop"`
		Metadata    map[string]any  `json:"metadata"`
	}
	if err := json.Unmarshal(simGet(t, dep).LastRequest.Body, &sent); err != nil {
		t.Fatal(err)
	}
	if len(sent.Messages) != 2 || sent.Messages[0].Content != "be brief" || len(sent.Messages[1].Parts) != 3 ||
		sent.Messages[1].Parts[1].ImageURL == nil || sent.Temperature != 0.25 || sent.MaxTokens != 64 ||
		len(sent.Stop) != 1 || sent.Metadata["trace"] != "x" {
		t.Errorf("provider got %s", simGet(t, dep).LastRequest.Body)
	}
}

func TestFallback(t *testing.T) {
	t.Parallel()
	a, b := deployment(t, "a"), deployment(t, "b")
	simPut(t, a, `{"faults":[{"type":"status","status":503,"count":-1}]}`)
	gw := openChain(t, a, b)

	resp := mustChat(t, gw, ask("fall back please"), llmux.WithTrace())

	if resp.Text() != "["+b+"] fall back please" {
		t.Errorf("Text() = %q, want the second target's answer", resp.Text())
	}
	if resp.Meta.Provider != "p1" || resp.Meta.Model != "m-1" {
		t.Errorf("Meta provider/model = %q/%q, want p1/m-1", resp.Meta.Provider, resp.Meta.Model)
	}
	tr := resp.Meta.Trace
	if len(tr.Attempts) != 2 {
		t.Fatalf("trace has %d attempts, want 2: %s", len(tr.Attempts), tr.Raw)
	}
	first, second := tr.Attempts[0], tr.Attempts[1]
	if first.Provider != "p0" || first.Model != "m-0" || first.HTTPStatus != 503 ||
		first.Status != llmux.StatusProvider || first.Outcome != "provider" || first.Error == "" ||
		first.Action == "" {
		t.Errorf("first attempt = %+v", first)
	}
	if second.Provider != "p1" || second.Status != llmux.StatusOK || second.Outcome != "ok" ||
		second.HTTPStatus != 200 {
		t.Errorf("second attempt = %+v", second)
	}
	if simGet(t, a).Requests != 1 || simGet(t, b).Requests != 1 {
		t.Errorf("each deployment should see one request")
	}
}

func TestFallbackOverConnectError(t *testing.T) {
	t.Parallel()
	b := deployment(t, "b")
	c := chainConfig("unused", b)
	c.Providers["p0"] = provider{Type: "openai", BaseURL: closedPortURL(t)}
	gw := open(t, c)

	resp := mustChat(t, gw, ask("anyone home"), llmux.WithTrace())

	if resp.Meta.Provider != "p1" {
		t.Errorf("answered by %q, want p1", resp.Meta.Provider)
	}
	if a := resp.Meta.Trace.Attempts; len(a) != 2 || a[0].Status != llmux.StatusConnect || a[0].HTTPStatus != 0 {
		t.Errorf("attempts = %+v, want a connect failure then success", a)
	}
}

func TestTrace(t *testing.T) {
	t.Parallel()
	dep := deployment(t, "a")
	gw := openChain(t, dep)

	resp := mustChat(t, gw, ask("trace me"), llmux.WithWorkflow("support-bot"), llmux.WithTask("classify"),
		llmux.WithTrace())

	tr := resp.Meta.Trace
	if tr.Model != "smart" || tr.Workflow != "support-bot" || tr.Task != "classify" || tr.Route == "" {
		t.Errorf("trace model/route/workflow/task = %q/%q/%q/%q", tr.Model, tr.Route, tr.Workflow, tr.Task)
	}
	if tr.Status != "ok" || tr.Provider != "p0" || tr.ProviderModel != "m-0" || tr.Stream {
		t.Errorf("trace status/provider/model/stream = %q/%q/%q/%v", tr.Status, tr.Provider, tr.ProviderModel, tr.Stream)
	}
	if len(tr.Attempts) != 1 || tr.Attempts[0].LatencyMS <= 0 || tr.TotalMS < tr.Attempts[0].LatencyMS {
		t.Errorf("attempts/total = %+v / %v", tr.Attempts, tr.TotalMS)
	}
	if tr.Usage.PromptTokens != 2 || tr.CostUSD != nil {
		t.Errorf("trace usage/cost = %+v / %v", tr.Usage, tr.CostUSD)
	}
	var raw map[string]any
	if err := json.Unmarshal(tr.Raw, &raw); err != nil || raw["task"] != "classify" {
		t.Errorf("Trace.Raw = %s", tr.Raw)
	}
}

// TestTraceOnlyWhenAsked: a successful call carries its trace only with
// WithTrace (libllmux builds it on demand); a failed call always does.
func TestTraceOnlyWhenAsked(t *testing.T) {
	t.Parallel()
	a, b := deployment(t, "a"), deployment(t, "b")
	simPut(t, a, `{"faults":[{"type":"status","status":503,"count":-1}]}`)
	gw := openChain(t, a, b)

	resp := mustChat(t, gw, ask("no trace"))
	if !reflect.DeepEqual(resp.Meta.Trace, llmux.Trace{}) || resp.Meta.Provider != "p1" || resp.Meta.Model != "m-1" {
		t.Errorf("without WithTrace: provider %q, model %q, trace %+v", resp.Meta.Provider, resp.Meta.Model, resp.Meta.Trace)
	}
	resp = mustChat(t, gw, ask("trace"), llmux.WithTrace())
	if len(resp.Meta.Trace.Attempts) != 2 || len(resp.Meta.Trace.Raw) == 0 {
		t.Errorf("with WithTrace: trace %s", resp.Meta.Trace.Raw)
	}

	s, err := gw.ChatStream(context.Background(), ask("no trace either"))
	if err != nil {
		t.Fatal(err)
	}
	if resp, err = s.Result(); err != nil || !reflect.DeepEqual(resp.Meta.Trace, llmux.Trace{}) {
		t.Errorf("stream without WithTrace: %v, trace %+v", err, resp.Meta.Trace)
	}

	gw2 := openChain(t, a)
	_, err = gw2.Chat(context.Background(), ask("fails"))
	if e := asError(t, err); len(e.Meta.Trace.Attempts) != 1 || e.Meta.Trace.Status != "provider" || len(e.Meta.Trace.Raw) == 0 {
		t.Errorf("a failed call's trace: %s", e.Meta.Trace.Raw)
	}
}

func TestToolCalls(t *testing.T) {
	t.Parallel()
	dep := deployment(t, "a")
	gw := openChain(t, dep)
	params := json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"}}}`)
	tools := []llmux.Tool{
		llmux.FunctionTool("get_weather", "Weather for a city", params),
		llmux.FunctionTool("get_time", "Time in a city", params),
	}
	req := ask("weather in Oslo")
	req.Tools = tools
	req.ToolChoice = "required"

	resp := mustChat(t, gw, req)

	calls := resp.ToolCalls()
	if len(calls) != 1 {
		t.Fatalf("tool calls = %+v, want one", calls)
	}
	call := calls[0]
	if !strings.HasPrefix(call.ID, "call_sim_") || call.Type != "function" || call.Function.Name != "get_weather" {
		t.Errorf("tool call = %+v", call)
	}
	var args map[string]string
	if err := json.Unmarshal([]byte(call.Function.Arguments), &args); err != nil || args["echo"] != "weather in Oslo" {
		t.Errorf("arguments = %q (%v)", call.Function.Arguments, err)
	}
	if resp.Choices[0].FinishReason != "tool_calls" || resp.Text() != "" {
		t.Errorf("finish/content = %q/%q", resp.Choices[0].FinishReason, resp.Text())
	}

	// A named tool_choice, and the round trip: the assistant's call and the
	// tool's answer go back in the next request.
	req.ToolChoice = llmux.ToolChoiceFunction("get_time")
	resp = mustChat(t, gw, req)
	if c := resp.ToolCalls(); len(c) != 1 || c[0].Function.Name != "get_time" {
		t.Errorf("named tool choice gave %+v", c)
	}
	next := &llmux.ChatRequest{
		Model: "smart",
		Tools: tools,
		Messages: []llmux.Message{
			llmux.UserMessage("weather in Oslo"),
			resp.Choices[0].Message,
			llmux.ToolMessage(resp.ToolCalls()[0].ID, "12:00"),
			llmux.UserMessage("thanks"),
		},
	}
	resp = mustChat(t, gw, next)
	if resp.Text() != "["+dep+"] thanks" {
		t.Errorf("Text() = %q", resp.Text())
	}
	var sent struct {
		Messages []map[string]json.RawMessage `json:"messages"`
	}
	json.Unmarshal(simGet(t, dep).LastRequest.Body, &sent)
	if len(sent.Messages) != 4 || string(sent.Messages[1]["content"]) != "null" ||
		sent.Messages[1]["tool_calls"] == nil || sent.Messages[2]["tool_call_id"] == nil {
		t.Errorf("provider got %s", simGet(t, dep).LastRequest.Body)
	}
}

func TestOpenFile(t *testing.T) {
	t.Parallel()
	dep := deployment(t, "a")
	path := filepath.Join(t.TempDir(), "llmux.json")
	if err := os.WriteFile(path, chainConfig(dep).JSON(t), 0o600); err != nil {
		t.Fatal(err)
	}
	gw, err := llmux.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	if resp := mustChat(t, gw, ask("from a file")); resp.Text() != "["+dep+"] from a file" {
		t.Errorf("Text() = %q", resp.Text())
	}
}

func TestCallOptionsReachTheCall(t *testing.T) {
	t.Parallel()
	dep := deployment(t, "a")
	simPut(t, dep, `{"latency_ms":300}`)
	gw := openChain(t, dep)

	// A generous timeout lets the slow answer through...
	if _, err := gw.Chat(context.Background(), ask("slow"), llmux.WithTimeout(5*time.Second)); err != nil {
		t.Fatalf("with 5s timeout: %v", err)
	}
	// ...and a context deadline sooner than WithTimeout wins.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := gw.Chat(ctx, ask("slow"), llmux.WithTimeout(5*time.Second))
	if err == nil {
		t.Fatal("a 100ms deadline should have cut a 300ms answer")
	}
}

// TestFallbackClasses checks each failure that moves on to the next target.
func TestFallbackClasses(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, fault string
		want        llmux.Status
	}{
		{"408", `{"type":"status","status":408}`, llmux.StatusTimeout},
		{"409", `{"type":"status","status":409}`, llmux.StatusProvider},
		{"429", `{"type":"status","status":429}`, llmux.StatusRateLimit},
		{"500", `{"type":"status","status":500}`, llmux.StatusProvider},
		{"502", `{"type":"status","status":502}`, llmux.StatusProvider},
		{"malformed", `{"type":"malformed"}`, llmux.StatusBadResponse},
		{"drop", `{"type":"drop"}`, llmux.StatusConnect},
		{"drop_mid_body", `{"type":"drop_mid_body"}`, llmux.StatusConnect},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, b := deployment(t, "a"), deployment(t, "b")
			simPut(t, a, `{"faults":[`+tc.fault+`]}`)
			gw := openChain(t, a, b)

			resp := mustChat(t, gw, ask("x"), llmux.WithTrace())

			at := resp.Meta.Trace.Attempts
			if resp.Meta.Provider != "p1" || len(at) != 2 || at[0].Status != tc.want || at[0].Action != "fallback" {
				t.Errorf("provider %q, attempts %+v; want p1 after %v", resp.Meta.Provider, at, tc.want)
			}
		})
	}
}

func TestFallbackOnProviderTimeout(t *testing.T) {
	t.Parallel()
	a, b := deployment(t, "a"), deployment(t, "b")
	simPut(t, a, `{"latency_ms":3000}`)
	c := chainConfig(a, b)
	p := c.Providers["p0"]
	p.TimeoutMS = 200
	c.Providers["p0"] = p
	gw := open(t, c)

	start := time.Now()
	resp := mustChat(t, gw, ask("x"), llmux.WithTrace())

	if at := resp.Meta.Trace.Attempts; resp.Meta.Provider != "p1" || len(at) != 2 || at[0].Status != llmux.StatusTimeout {
		t.Errorf("provider %q, attempts %+v", resp.Meta.Provider, at)
	}
	if time.Since(start) > 2*time.Second {
		t.Errorf("took %v with a 200ms provider timeout", time.Since(start))
	}
}

func TestDirectRoute(t *testing.T) {
	t.Parallel()
	dep := deployment(t, "a")
	c := chainConfig(dep)
	c.Routing = map[string]any{"allow_direct": true}
	gw := open(t, c)
	req := ask("direct")
	req.Model = "p0/m-direct"

	resp := mustChat(t, gw, req, llmux.WithTrace())

	if resp.Meta.Model != "m-direct" || resp.Meta.Trace.Route != "direct" || resp.Text() != "["+dep+"] direct" {
		t.Errorf("model %q, route %q, text %q", resp.Meta.Model, resp.Meta.Trace.Route, resp.Text())
	}
	// Without allow_direct, provider/model is just an unknown alias.
	_, err := openChain(t, dep).Chat(context.Background(), req)
	if !errors.Is(err, llmux.ErrUnknownModel) {
		t.Errorf("direct route without allow_direct: %v", err)
	}
}
