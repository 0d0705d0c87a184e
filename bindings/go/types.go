package llmux

import (
	"encoding/json"
	"strings"
)

// ChatRequest is an OpenAI Chat Completions request. Model names an alias
// from the gateway's config. Fields llmux has no typed field for go in Extra.
// Stream is not a field: use Gateway.ChatStream, which sets it.
type ChatRequest struct {
	Model               string          `json:"model"`
	Messages            []Message       `json:"messages"`
	Tools               []Tool          `json:"tools,omitempty"`
	ToolChoice          any             `json:"tool_choice,omitempty"` // "auto", "none", "required" or ToolChoiceFunction(name)
	ParallelToolCalls   *bool           `json:"parallel_tool_calls,omitempty"`
	Temperature         *float64        `json:"temperature,omitempty"`
	TopP                *float64        `json:"top_p,omitempty"`
	MaxTokens           *int            `json:"max_tokens,omitempty"`
	MaxCompletionTokens *int            `json:"max_completion_tokens,omitempty"`
	N                   *int            `json:"n,omitempty"`
	Stop                []string        `json:"stop,omitempty"`
	PresencePenalty     *float64        `json:"presence_penalty,omitempty"`
	FrequencyPenalty    *float64        `json:"frequency_penalty,omitempty"`
	Seed                *int64          `json:"seed,omitempty"`
	User                string          `json:"user,omitempty"`
	ResponseFormat      *ResponseFormat `json:"response_format,omitempty"`
	StreamOptions       *StreamOptions  `json:"stream_options,omitempty"`

	// Extra holds further top-level fields, sent verbatim. On a name clash
	// Extra wins over the typed field.
	Extra map[string]json.RawMessage `json:"-"`
}

// MarshalJSON merges Extra into the typed fields (Extra wins on a name clash).
// The binding encodes requests with the same code, without encoding/json.
func (r ChatRequest) MarshalJSON() ([]byte, error) {
	return appendRequest(nil, &r)
}

// ResponseFormat asks for JSON output ("json_object" or "json_schema").
type ResponseFormat struct {
	Type       string          `json:"type"`
	JSONSchema json.RawMessage `json:"json_schema,omitempty"`
}

// StreamOptions of a streamed request; IncludeUsage asks for a final chunk
// with token usage.
type StreamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// Message is one chat message. Content is the text; Parts, when not nil,
// replaces it with an array of content parts (text, images). An assistant
// message with ToolCalls and no Content is sent with "content": null.
type Message struct {
	Role       string        // "system", "user", "assistant", "tool" (or "developer")
	Content    string        // text content
	Parts      []ContentPart // array content; when not nil, sent instead of Content
	Name       string        // optional participant name
	ToolCalls  []ToolCall    // assistant: the tools it called
	ToolCallID string        // tool: the call this message answers
	Refusal    string        // assistant: a refusal, if the model refused
}

type messageJSON struct {
	Role       string          `json:"role"`
	Content    json.RawMessage `json:"content,omitempty"`
	Name       string          `json:"name,omitempty"`
	ToolCalls  []ToolCall      `json:"tool_calls,omitempty"`
	ToolCallID string          `json:"tool_call_id,omitempty"`
	Refusal    string          `json:"refusal,omitempty"`
}

// MarshalJSON writes content as a string, an array of parts, or null.
func (m Message) MarshalJSON() ([]byte, error) {
	return appendMessage(nil, &m), nil
}

// UnmarshalJSON accepts string, array and null content.
func (m *Message) UnmarshalJSON(b []byte) error {
	var j messageJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*m = Message{Role: j.Role, Name: j.Name, ToolCalls: j.ToolCalls,
		ToolCallID: j.ToolCallID, Refusal: j.Refusal}
	c := strings.TrimSpace(string(j.Content))
	switch {
	case c == "" || c == "null":
	case c[0] == '[':
		return json.Unmarshal(j.Content, &m.Parts)
	default:
		return json.Unmarshal(j.Content, &m.Content)
	}
	return nil
}

// SystemMessage, UserMessage, AssistantMessage and ToolMessage build the
// common messages.
func SystemMessage(text string) Message    { return Message{Role: "system", Content: text} }
func UserMessage(text string) Message      { return Message{Role: "user", Content: text} }
func AssistantMessage(text string) Message { return Message{Role: "assistant", Content: text} }
func ToolMessage(toolCallID, content string) Message {
	return Message{Role: "tool", ToolCallID: toolCallID, Content: content}
}

// ContentPart is one element of array content.
type ContentPart struct {
	Type     string    `json:"type"` // "text" or "image_url"
	Text     string    `json:"text,omitempty"`
	ImageURL *ImageURL `json:"image_url,omitempty"`
}

// ImageURL is the image of an "image_url" content part.
type ImageURL struct {
	URL    string `json:"url"`
	Detail string `json:"detail,omitempty"`
}

// TextPart and ImagePart build content parts.
func TextPart(text string) ContentPart { return ContentPart{Type: "text", Text: text} }
func ImagePart(url string) ContentPart {
	return ContentPart{Type: "image_url", ImageURL: &ImageURL{URL: url}}
}

// Tool is a function the model may call.
type Tool struct {
	Type     string      `json:"type"` // "function"
	Function FunctionDef `json:"function"`
}

// FunctionDef describes a callable function; Parameters is a JSON Schema.
type FunctionDef struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
	Strict      *bool           `json:"strict,omitempty"`
}

// FunctionTool builds a function tool; parameters is a JSON Schema (may be nil).
func FunctionTool(name, description string, parameters json.RawMessage) Tool {
	return Tool{Type: "function", Function: FunctionDef{Name: name, Description: description,
		Parameters: parameters}}
}

// ToolChoiceFunction is a tool_choice that forces a call to the named function.
func ToolChoiceFunction(name string) any {
	return map[string]any{"type": "function", "function": map[string]string{"name": name}}
}

// ToolCall is a call the model made. In streamed deltas Index says which call
// a fragment belongs to and Arguments arrives in pieces.
type ToolCall struct {
	Index    *int         `json:"index,omitempty"`
	ID       string       `json:"id,omitempty"`
	Type     string       `json:"type,omitempty"` // "function"
	Function FunctionCall `json:"function"`
}

// FunctionCall is the function and its arguments (a JSON text) of a ToolCall.
type FunctionCall struct {
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments"`
}

// Usage is the token usage of a call. The details are zero when the
// provider gave none.
type Usage struct {
	PromptTokens            int                     `json:"prompt_tokens"`
	CompletionTokens        int                     `json:"completion_tokens"`
	TotalTokens             int                     `json:"total_tokens"`
	PromptTokensDetails     PromptTokensDetails     `json:"prompt_tokens_details,omitzero"`
	CompletionTokensDetails CompletionTokensDetails `json:"completion_tokens_details,omitzero"`
}

// PromptTokensDetails breaks down Usage.PromptTokens (which includes them).
type PromptTokensDetails struct {
	CachedTokens     int `json:"cached_tokens,omitempty"`      // read from the provider's prompt cache
	CacheWriteTokens int `json:"cache_write_tokens,omitempty"` // written to the prompt cache
}

// CompletionTokensDetails breaks down Usage.CompletionTokens (which includes
// them).
type CompletionTokensDetails struct {
	ReasoningTokens int `json:"reasoning_tokens,omitempty"` // spent on reasoning, not in the content
}

// ChatResponse is an OpenAI chat.completion plus what llmux did to get it.
type ChatResponse struct {
	ID                string   `json:"id"`
	Object            string   `json:"object"`
	Created           int64    `json:"created"`
	Model             string   `json:"model"`
	Choices           []Choice `json:"choices"`
	Usage             *Usage   `json:"usage,omitempty"`
	SystemFingerprint string   `json:"system_fingerprint,omitempty"`

	Raw  json.RawMessage `json:"-"` // the chat.completion JSON, verbatim
	Meta Meta            `json:"-"` // provider, model, cost and trace
}

// Choice is one completion choice.
type Choice struct {
	Index        int             `json:"index"`
	Message      Message         `json:"message"`
	FinishReason string          `json:"finish_reason"`
	Logprobs     json.RawMessage `json:"logprobs,omitempty"`
}

// Text is the content of the first choice ("" if none).
func (r *ChatResponse) Text() string {
	if r == nil || len(r.Choices) == 0 {
		return ""
	}
	return r.Choices[0].Message.Content
}

// ToolCalls are the tool calls of the first choice.
func (r *ChatResponse) ToolCalls() []ToolCall {
	if r == nil || len(r.Choices) == 0 {
		return nil
	}
	return r.Choices[0].Message.ToolCalls
}

// Meta is what llmux reports about a call besides the completion itself.
type Meta struct {
	Provider   string  // provider name from the config that answered (or failed last)
	Model      string  // the provider's model id that answered (or failed last)
	CostUSD    float64 // cost in US dollars; negative when the price is unknown
	HTTPStatus int     // HTTP status of the provider's last answer; 0 if none

	// Token usage as the provider reported it; -1 when unknown.
	PromptTokens     int64
	CompletionTokens int64

	// Trace is the route decision and every attempt: always set in the Meta
	// of an *Error; for a successful call only when it was made WithTrace
	// (otherwise the zero Trace, with Raw nil).
	Trace Trace
}

// Cost returns the cost in US dollars and whether it is known.
func (m Meta) Cost() (usd float64, known bool) { return m.CostUSD, m.CostUSD >= 0 }

// Trace records what the gateway did and why (docs/trace.md). Fields the
// binding does not type are in Raw.
type Trace struct {
	Model         string      `json:"model"`   // the requested model (alias)
	Route         string      `json:"route"`   // how it was resolved, e.g. "alias"
	Targets       int         `json:"targets"` // how many targets the route offered
	Reason        string      `json:"reason"`  // why these targets
	Workflow      string      `json:"workflow"`
	Task          string      `json:"task"`
	Key           string      `json:"key"`                      // the gateway key's id; "" without a key
	Team          string      `json:"team"`                     // the gateway key's team
	RetryAfterMS  *int64      `json:"retry_after_ms,omitempty"` // a gateway rate limit's wait (no attempt was made)
	Stream        bool        `json:"stream"`
	Attempts      []Attempt   `json:"attempts"`
	Status        string      `json:"status"`         // class of the outcome: "ok", "rate_limit", ...
	Provider      string      `json:"provider"`       // provider of the final attempt
	ProviderModel string      `json:"provider_model"` // model id of the final attempt
	Usage         TraceUsage  `json:"usage"`
	CostUSD       *float64    `json:"cost_usd"`       // nil when the price is unknown
	CostNUSD      int64       `json:"cost_nusd"`      // the same in nano-dollars, exact; -1 when unknown
	CostEstimated bool        `json:"cost_estimated"` // tokens were estimated (a stream without usage)
	Price         *TracePrice `json:"price"`          // the price entry used; nil when none is known
	Chunks        int         `json:"chunks"`         // chunks delivered, for a streamed call
	TotalMS       float64     `json:"total_ms"`

	Raw json.RawMessage `json:"-"` // the trace JSON, verbatim
}

// TraceUsage is the token usage recorded in a trace; -1 when unknown.
type TraceUsage struct {
	PromptTokens       int64 `json:"prompt_tokens"`
	CompletionTokens   int64 `json:"completion_tokens"`
	CachedTokens       int64 `json:"cached_tokens"`
	CacheWriteTokens   int64 `json:"cache_write_tokens"`
	CacheWrite1hTokens int64 `json:"cache_write_1h_tokens"`
	ReasoningTokens    int64 `json:"reasoning_tokens"`
}

// TracePrice names the price entry a call's cost comes from (docs/cost.md).
type TracePrice struct {
	Entry       string `json:"entry"`        // the model id or "provider/model" key
	Source      string `json:"source"`       // "config", "price_file <path>", or "built-in (LiteLLM <version>, <date>)"
	LongContext bool   `json:"long_context"` // the long-context prices applied
}

// Attempt is one try of one target.
type Attempt struct {
	Provider     string   `json:"provider"`
	Model        string   `json:"model"`
	Outcome      string   `json:"outcome"` // class of the attempt's status: "ok", "provider", "timeout", ...
	Status       Status   `json:"status"`  // the attempt's status code
	HTTPStatus   int      `json:"http_status"`
	LatencyMS    float64  `json:"latency_ms"`
	RetryAfterMS *int64   `json:"retry_after_ms,omitempty"` // the provider's Retry-After, if it sent one
	Error        string   `json:"error"`
	Action       string   `json:"action"`              // what the gateway did next, e.g. "fallback"
	CostUSD      *float64 `json:"cost_usd,omitempty"`  // what the provider billed for this attempt, when it billed
	Estimated    bool     `json:"estimated,omitempty"` // that attempt's tokens were estimated
}

// ChatChunk is one OpenAI chat.completion.chunk of a streamed call.
type ChatChunk struct {
	ID      string        `json:"id"`
	Object  string        `json:"object"`
	Created int64         `json:"created"`
	Model   string        `json:"model"`
	Choices []ChunkChoice `json:"choices"`
	Usage   *Usage        `json:"usage,omitempty"`

	Raw json.RawMessage `json:"-"` // the chunk JSON, verbatim
}

// ChunkChoice is the delta of one choice in a chunk.
type ChunkChoice struct {
	Index        int    `json:"index"`
	Delta        Delta  `json:"delta"`
	FinishReason string `json:"finish_reason"` // "" until the last chunk of the choice
}

// Delta is the increment a chunk carries.
type Delta struct {
	Role      string     `json:"role,omitempty"`
	Content   string     `json:"content,omitempty"`
	ToolCalls []ToolCall `json:"tool_calls,omitempty"`
	Refusal   string     `json:"refusal,omitempty"`
}

// Text is the content delta of the first choice ("" if none).
func (c *ChatChunk) Text() string {
	if c == nil || len(c.Choices) == 0 {
		return ""
	}
	return c.Choices[0].Delta.Content
}
