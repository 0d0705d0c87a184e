package llmux

// Tests of the hand-written request encoder and response decoder against
// encoding/json, which they replace on the hot path.

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
)

// refMessage and refRequest encode as the binding did with encoding/json and
// custom MarshalJSON methods; the encoder must produce the same JSON value.
type refMessage struct {
	Role       string          `json:"role"`
	Content    json.RawMessage `json:"content,omitempty"`
	Name       string          `json:"name,omitempty"`
	ToolCalls  []ToolCall      `json:"tool_calls,omitempty"`
	ToolCallID string          `json:"tool_call_id,omitempty"`
	Refusal    string          `json:"refusal,omitempty"`
}

func refEncodeMessage(m Message) (json.RawMessage, error) {
	j := refMessage{Role: m.Role, Name: m.Name, ToolCalls: m.ToolCalls, ToolCallID: m.ToolCallID, Refusal: m.Refusal}
	var err error
	switch {
	case m.Parts != nil:
		j.Content, err = json.Marshal(m.Parts)
	case m.Content == "" && len(m.ToolCalls) > 0:
		j.Content = json.RawMessage("null")
	default:
		j.Content, err = json.Marshal(m.Content)
	}
	if err != nil {
		return nil, err
	}
	return json.Marshal(j)
}

func refEncodeRequest(r *ChatRequest) ([]byte, error) {
	type plain struct {
		Model               string            `json:"model"`
		Messages            []json.RawMessage `json:"messages"`
		Tools               []Tool            `json:"tools,omitempty"`
		ToolChoice          any               `json:"tool_choice,omitempty"`
		ParallelToolCalls   *bool             `json:"parallel_tool_calls,omitempty"`
		Temperature         *float64          `json:"temperature,omitempty"`
		TopP                *float64          `json:"top_p,omitempty"`
		MaxTokens           *int              `json:"max_tokens,omitempty"`
		MaxCompletionTokens *int              `json:"max_completion_tokens,omitempty"`
		N                   *int              `json:"n,omitempty"`
		Stop                []string          `json:"stop,omitempty"`
		PresencePenalty     *float64          `json:"presence_penalty,omitempty"`
		FrequencyPenalty    *float64          `json:"frequency_penalty,omitempty"`
		Seed                *int64            `json:"seed,omitempty"`
		User                string            `json:"user,omitempty"`
		ResponseFormat      *ResponseFormat   `json:"response_format,omitempty"`
		StreamOptions       *StreamOptions    `json:"stream_options,omitempty"`
	}
	p := plain{Model: r.Model, Tools: r.Tools, ToolChoice: r.ToolChoice, ParallelToolCalls: r.ParallelToolCalls,
		Temperature: r.Temperature, TopP: r.TopP, MaxTokens: r.MaxTokens, MaxCompletionTokens: r.MaxCompletionTokens,
		N: r.N, Stop: r.Stop, PresencePenalty: r.PresencePenalty, FrequencyPenalty: r.FrequencyPenalty,
		Seed: r.Seed, User: r.User, ResponseFormat: r.ResponseFormat, StreamOptions: r.StreamOptions}
	if r.Messages != nil {
		p.Messages = []json.RawMessage{}
		for _, m := range r.Messages {
			b, err := refEncodeMessage(m)
			if err != nil {
				return nil, err
			}
			p.Messages = append(p.Messages, b)
		}
	}
	b, err := json.Marshal(p)
	if err != nil || len(r.Extra) == 0 {
		return b, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	for k, v := range r.Extra {
		m[k] = v
	}
	return json.Marshal(m)
}

func ptr[T any](v T) *T { return &v }

// awkward are strings that need escaping one way or another.
var awkward = []string{
	"", "plain", `quote " and backslash \ and slash /`, "new\nline\ttab\rcr\bbs\fff",
	"\x00\x01\x1f\x7f", "<html>&amp;</html>", "caf\u00e9 \u2028 \u2029 \U0001F600",
	"bad utf8 \xff\xfe here", "truncated \xe2\x82", "\xed\xa0\x80 surrogate half",
}

func codecRequests() []*ChatRequest {
	reqs := []*ChatRequest{
		{},
		{Model: "smart", Messages: []Message{}},
		{Model: "smart", Messages: []Message{SystemMessage("be brief"), UserMessage("hi")}, MaxTokens: ptr(64)},
		{
			Model: "m",
			Messages: []Message{
				{Role: "user", Parts: []ContentPart{TextPart("a"), ImagePart("https://x/y.png"),
					{Type: "image_url", ImageURL: &ImageURL{URL: "u", Detail: "high"}}}},
				{Role: "user", Parts: []ContentPart{}},
				{Role: "assistant", ToolCalls: []ToolCall{{ID: "c1", Type: "function",
					Function: FunctionCall{Name: "f", Arguments: `{"a":1}`}}, {Index: ptr(2),
					Function: FunctionCall{Arguments: ""}}}, Name: "bot", Refusal: "no"},
				{Role: "assistant", Content: "text and calls", ToolCalls: []ToolCall{{ID: "c2"}}},
				ToolMessage("c1", "result"),
			},
			Tools: []Tool{
				FunctionTool("f", "does f", json.RawMessage(` { "type" : "object" } `)),
				FunctionTool("g", "", nil),
				{Type: "function", Function: FunctionDef{Name: "h", Strict: ptr(true), Parameters: json.RawMessage{}}},
			},
			ToolChoice:          ToolChoiceFunction("f"),
			ParallelToolCalls:   ptr(false),
			Temperature:         ptr(0.0),
			TopP:                ptr(1e-7),
			MaxCompletionTokens: ptr(-3),
			N:                   ptr(2),
			Stop:                []string{"END", "<|stop|>"},
			PresencePenalty:     ptr(1e21),
			FrequencyPenalty:    ptr(-123456.789),
			Seed:                ptr(int64(math.MinInt64)),
			User:                "u-1",
			ResponseFormat:      &ResponseFormat{Type: "json_schema", JSONSchema: json.RawMessage(`{"name":"x"}`)},
			StreamOptions:       &StreamOptions{IncludeUsage: true},
		},
		{Model: "smart", Messages: []Message{UserMessage("x")}, ToolChoice: "auto", Temperature: ptr(0.5),
			Extra: map[string]json.RawMessage{"metadata": json.RawMessage(`{"a": [1, 2]}`), "temperature": json.RawMessage(`1`),
				"model": json.RawMessage(`"other"`), "z": nil, "stream": json.RawMessage(`true`)}},
		{Model: "smart", Extra: map[string]json.RawMessage{"messages": json.RawMessage(`[]`)}},
	}
	for _, s := range awkward {
		reqs = append(reqs, &ChatRequest{Model: s, User: s, Stop: []string{s},
			Messages: []Message{{Role: s, Content: s, Name: s, ToolCallID: s, Refusal: s,
				ToolCalls: []ToolCall{{ID: s, Type: s, Function: FunctionCall{Name: s, Arguments: s}}}},
				{Role: "user", Parts: []ContentPart{{Type: s, Text: s, ImageURL: &ImageURL{URL: s, Detail: s}}}}},
			Tools:      []Tool{FunctionTool(s, s, nil)},
			ToolChoice: s,
			Extra:      map[string]json.RawMessage{s + "x": json.RawMessage(`"` + strings.Repeat("y", len(s)) + `"`)}})
	}
	for _, f := range []float64{0, -0.0, 1, 0.1, 1e-6, 9.99e-7, 1e20, 1e21, 123456789e-20, math.MaxFloat64, math.SmallestNonzeroFloat64} {
		reqs = append(reqs, &ChatRequest{Model: "f", Temperature: ptr(f), TopP: ptr(-f)})
	}
	return reqs
}

func TestEncodeRequestMatchesEncodingJSON(t *testing.T) {
	for i, r := range codecRequests() {
		want, werr := refEncodeRequest(r)
		got, gerr := appendRequest(nil, r)
		if (werr != nil) != (gerr != nil) {
			t.Errorf("request %d: error %v, encoding/json: %v", i, gerr, werr)
			continue
		}
		if gerr != nil {
			continue
		}
		if !json.Valid(got) {
			t.Errorf("request %d: invalid JSON %s", i, got)
			continue
		}
		var x, y any
		json.Unmarshal(want, &x)
		json.Unmarshal(got, &y)
		if !reflect.DeepEqual(x, y) {
			t.Errorf("request %d:\n got %s\nwant %s", i, got, want)
		}
		// The public marshallers give the same bytes (json.Marshal compacts them).
		viaMarshal, err := json.Marshal(r)
		if err != nil {
			t.Errorf("request %d: json.Marshal: %v", i, err)
		}
		var z any
		json.Unmarshal(viaMarshal, &z)
		if !reflect.DeepEqual(x, z) {
			t.Errorf("request %d: json.Marshal gives %s", i, viaMarshal)
		}
		for j, m := range r.Messages {
			a, _ := refEncodeMessage(m)
			b, err := json.Marshal(m)
			if err != nil || !jsonSame(a, b) {
				t.Errorf("request %d message %d: %s (%v), want %s", i, j, b, err, a)
			}
		}
	}
}

func jsonSame(a, b []byte) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && reflect.DeepEqual(x, y)
}

func TestEncodeRequestErrors(t *testing.T) {
	bad := []*ChatRequest{
		{Model: "m", Temperature: ptr(math.NaN())},
		{Model: "m", TopP: ptr(math.Inf(1))},
		{Model: "m", Extra: map[string]json.RawMessage{"x": json.RawMessage(`{bad`)}},
		{Model: "m", Extra: map[string]json.RawMessage{"x": json.RawMessage{}}},
		{Model: "m", Tools: []Tool{FunctionTool("f", "", json.RawMessage(`[1,`))}},
		{Model: "m", ToolChoice: make(chan int)},
		{Model: "m", ResponseFormat: &ResponseFormat{Type: "json_schema", JSONSchema: json.RawMessage(`nope`)}},
	}
	for i, r := range bad {
		if _, err := refEncodeRequest(r); err == nil {
			t.Fatalf("request %d: encoding/json accepts it", i)
		}
		if b, err := appendRequest(nil, r); err == nil {
			t.Errorf("request %d: encoded as %s, want an error", i, b)
		}
		if _, err := encodeRequest(r); err == nil || !errors.Is(err, ErrBadRequest) {
			t.Errorf("request %d: encodeRequest error %v, want ErrBadRequest", i, err)
		}
	}
}

// decodeInputs are chat.completion-like documents, well-formed or not; each
// must decode exactly as json.Unmarshal decodes it.
var decodeInputs = []string{
	`{"id":"chatcmpl-sim-a-40001","object":"chat.completion","created":1795578101,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"[a] hi \"there\"\n<x> é"},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":5,"total_tokens":10}}`,
	` { "id" : "x" , "choices" : [ ] , "usage" : null , "system_fingerprint" : "fp" } `,
	`{"choices":[{"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get","arguments":"{\"a\":1}"}},{"index":1,"function":null},{"index":null}]},"finish_reason":"tool_calls","logprobs":{"content":[{"token":"a","logprob":-0.1}]}}]}`,
	`{"choices":[{"message":{"role":"user","content":[{"type":"text","text":"t"},{"type":"image_url","image_url":{"url":"u"}}]}}]}`,
	`{"choices":[{"message":{"content":"\u00e9\ud83d\ude00\ud83d\u0041\udc00 \\ \/ \b\f\r\t"}}]}`,
	`{"choices":[{"message":{"content":"bad \xff utf8 \xe2\x82"}}]}`,
	`{"choices":[{"message":{"content":"ok","annotations":[],"audio":{"id":"x","data":[1,2.5e3,-0,true,false,null]}}}],"service_tier":"default"}`,
	`{"choices":[null,{"index":1},{"message":null}]}`,
	`{"choices":null,"created":-42}`,
	`{"ID":"upper","Model":"m"}`,
	`{"id":"a","id":"b"}`,
	`{"usage":{"prompt_tokens":1},"usage":{"completion_tokens":2}}`,
	`{"usage":{"prompt_tokens":20,"completion_tokens":9,"total_tokens":29,"prompt_tokens_details":{"cached_tokens":8,"audio_tokens":0,"cache_write_tokens":4},"completion_tokens_details":{"reasoning_tokens":6,"audio_tokens":0,"accepted_prediction_tokens":0}}}`,
	`{"usage":{"prompt_tokens_details":null,"completion_tokens_details":null}}`,
	`{"usage":{"prompt_tokens_details":{},"completion_tokens_details":{}}}`,
	`{"usage":{"prompt_tokens_details":[],"completion_tokens_details":7}}`,
	`{"usage":{"prompt_tokens_details":{"cached_tokens":"8"}}}`,
	`{"usage":{"prompt_tokens_details":{"cached_tokens":1.5}}}`,
	`{"usage":{"prompt_tokens_details":{"Cached_Tokens":3}}}`,
	`{"usage":{"prompt_tokens_details":{"cached_tokens":1,"cached_tokens":2}}}`,
	`{"usage":{"completion_tokens_details":{"reasoning_tokens":1},"completion_tokens_details":{"reasoning_tokens":2}}}`,
	`{"usage":{"completion_tokens_details":{"REASONING_tokens":5}}}`,
	`{"usage":{"Prompt_Tokens_Details":{"cached_tokens":5}}}`,
	`{"choices":[{"message":{"Content":"case"}}]}`,
	`{"choices":[{"message":{"content":"a","content":"b"}}]}`,
	`{"created":1.5}`,
	`{"created":1e3}`,
	`{"created":"1"}`,
	`{"created":99999999999999999999}`,
	`{"created":-9223372036854775808}`,
	`{"created":9223372036854775807}`,
	`{"created":9223372036854775808}`,
	`{"choices":[{"index":01}]}`,
	`{"choices":[{"message":{"content":5}}]}`,
	`{"choices":[{"message":{"content":{"a":1}}}]}`,
	`{"choices":[{"message":{"content":[1,2]}}]}`,
	`{"choices":[{"message":{"role":"a","content":"b"}],}`,
	`{"id":"a",}`,
	`{"id":"a"} x`,
	`{"id":"a\u12"}`,
	`{"id":"tab	inside"}`,
	`{"id":"a\qb"}`,
	`{"i\u0064":"escaped name"}`,
	`{"\u017fystem_fingerprint":"long s"}`,
	`{"x":[[[[[[[[[[]]]]]]]]]],"y":{"z":{"w":"v"}},"n":-0.5e-3,"t":true}`,
	`{"x":-}`, `{"x":1.}`, `{"x":.5}`, `{"x":+1}`, `{"x":nul}`, `{"x":nullx}`, `{"x":"\'"}`,
	`null`, `[]`, `"s"`, ``, `{`, `{"id"`, `{"id":`, `{"id":"x"`,
	`{"choices":[{"message":{"tool_calls":[{"function":{"name":"f","arguments":"{}","extra":1}}]}}]}`,
	`{"choices":[{"message":{"tool_calls":[{"index":1.5}]}}]}`,
	`{"choices":[{"message":{"tool_calls":{}}}]}`,
	`{"choices":[{"message":{"tool_calls":[{"Function":{}}]}}]}`,
}

func TestDecodeResponseMatchesEncodingJSON(t *testing.T) {
	for _, in := range decodeInputs {
		checkDecodeResponse(t, []byte(in))
	}
}

func checkDecodeResponse(t *testing.T, in []byte) {
	t.Helper()
	var want ChatResponse
	werr := json.Unmarshal(in, &want)
	got, gerr := newResponse(in)
	if (werr == nil) != (gerr == nil) || (werr != nil && werr.Error() != gerr.Error()) {
		t.Errorf("%s: error %v, encoding/json: %v", in, gerr, werr)
	}
	if !reflect.DeepEqual(&want, got) {
		t.Errorf("%s:\n got %#v\nwant %#v", in, got, &want)
	}
	var wc ChatChunk
	werr = json.Unmarshal(in, &wc)
	gc, gerr := newChunk(in)
	if (werr == nil) != (gerr == nil) || (werr != nil && werr.Error() != gerr.Error()) {
		t.Errorf("%s: chunk error %v, encoding/json: %v", in, gerr, werr)
	}
	if !reflect.DeepEqual(&wc, gc) {
		t.Errorf("%s: chunk\n got %#v\nwant %#v", in, gc, &wc)
	}
}

var chunkInputs = []string{
	`{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"one "},"finish_reason":null}]}`,
	`{"id":"c","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":""}}]},"finish_reason":null}]}`,
	`{"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3,"prompt_tokens_details":{"cached_tokens":1},"completion_tokens_details":{"reasoning_tokens":1}}}`,
	`{"choices":[{"delta":null},null],"usage":null}`,
	`{"choices":[{"delta":{"content":"x","refusal":null,"Role":"r"}}]}`,
}

func TestDecodeChunkMatchesEncodingJSON(t *testing.T) {
	for _, in := range chunkInputs {
		checkDecodeResponse(t, []byte(in))
	}
}

// The fast path must take the common answers, not hand them to encoding/json.
func TestDecodeFastPathTaken(t *testing.T) {
	for _, in := range append([]string{decodeInputs[0], decodeInputs[2], decodeInputs[4], decodeInputs[6], decodeInputs[12]}, chunkInputs[:3]...) {
		d := decoder{data: []byte(in)}
		var c ChatChunk
		var r ChatResponse
		ok := strings.Contains(in, "chunk") || strings.Contains(in, "delta")
		if ok {
			ok = d.chunk(&c) && d.end()
		} else {
			ok = d.response(&r) && d.end()
		}
		if !ok {
			t.Errorf("fast path gave up on %s", in)
		}
	}
}

func FuzzDecodeResponse(f *testing.F) {
	for _, in := range append(decodeInputs, chunkInputs...) {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, in []byte) { checkDecodeResponse(t, in) })
}

var benchResponse = []byte(`{"id":"chatcmpl-sim-a-40001","object":"chat.completion","created":1795578101,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"[a] Summarise why an HTTP client should reuse its connections when it talks to a model provider many times a second."},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":5,"total_tokens":10}}`)

func BenchmarkDecodeResponse(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := newResponse(benchResponse); err != nil {
			b.Fatal(err)
		}
	}
}

var benchChunk = []byte(`{"id":"chatcmpl-sim-a-40001","object":"chat.completion.chunk","created":1795578101,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"[a] Summarise why"},"finish_reason":null}]}`)

func BenchmarkDecodeChunk(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := newChunk(benchChunk); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeResponseEncodingJSON(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		var r ChatResponse
		if err := json.Unmarshal(benchResponse, &r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeRequest(b *testing.B) {
	mt := 64
	req := &ChatRequest{Model: "one", Messages: []Message{SystemMessage("You are a terse assistant. Answer in one short sentence."),
		UserMessage("Summarise why an HTTP client should reuse its connections when it talks to a model provider many times a second.")},
		MaxTokens: &mt}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		r, err := encodeRequest(req)
		if err != nil {
			b.Fatal(err)
		}
		r.free()
	}
}
