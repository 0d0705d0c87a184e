package llmux

// The request encoder. A ChatRequest is written straight into a byte slice:
// no reflection, and no MarshalJSON whose output encoding/json would scan
// again to validate and compact it. The output is the JSON encoding/json
// would produce for the same request (the same JSON value; libllmux forwards
// these bytes to the provider), except that '<', '>', '&', U+2028 and U+2029
// are not escaped (HTML and JSONP safety are pointless here) and, when Extra
// is set, the typed fields keep their order with Extra's fields after them
// (sorted) rather than all fields sorted. Values the binding has no typed
// encoder for (a ToolChoice of an unexpected type, ResponseFormat) go through
// encoding/json.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"
)

// appendRequest appends the JSON of r to b. Every member is written with a
// leading comma; the first comma becomes the opening brace at the end.
func appendRequest(b []byte, r *ChatRequest) ([]byte, error) {
	var err error
	start := len(b)
	if !r.extraHas("model") {
		b = appendString(append(b, `,"model":`...), r.Model)
	}
	if !r.extraHas("messages") {
		b = append(b, `,"messages":`...)
		if r.Messages == nil {
			b = append(b, "null"...)
		} else {
			b = append(b, '[')
			for i := range r.Messages {
				if i > 0 {
					b = append(b, ',')
				}
				b = appendMessage(b, &r.Messages[i])
			}
			b = append(b, ']')
		}
	}
	if len(r.Tools) > 0 && !r.extraHas("tools") {
		b = append(b, `,"tools":[`...)
		for i := range r.Tools {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendTool(b, &r.Tools[i]); err != nil {
				return nil, err
			}
		}
		b = append(b, ']')
	}
	if r.ToolChoice != nil && !r.extraHas("tool_choice") {
		b = append(b, `,"tool_choice":`...)
		if s, ok := r.ToolChoice.(string); ok {
			b = appendString(b, s)
		} else if b, err = appendMarshal(b, r.ToolChoice); err != nil {
			return nil, err
		}
	}
	if r.ParallelToolCalls != nil && !r.extraHas("parallel_tool_calls") {
		b = strconv.AppendBool(append(b, `,"parallel_tool_calls":`...), *r.ParallelToolCalls)
	}
	if b, err = r.appendFloatField(b, `,"temperature":`, r.Temperature); err != nil {
		return nil, err
	}
	if b, err = r.appendFloatField(b, `,"top_p":`, r.TopP); err != nil {
		return nil, err
	}
	b = r.appendIntField(b, `,"max_tokens":`, r.MaxTokens)
	b = r.appendIntField(b, `,"max_completion_tokens":`, r.MaxCompletionTokens)
	b = r.appendIntField(b, `,"n":`, r.N)
	if len(r.Stop) > 0 && !r.extraHas("stop") {
		b = append(b, `,"stop":[`...)
		for i, s := range r.Stop {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, s)
		}
		b = append(b, ']')
	}
	if b, err = r.appendFloatField(b, `,"presence_penalty":`, r.PresencePenalty); err != nil {
		return nil, err
	}
	if b, err = r.appendFloatField(b, `,"frequency_penalty":`, r.FrequencyPenalty); err != nil {
		return nil, err
	}
	if r.Seed != nil && !r.extraHas("seed") {
		b = strconv.AppendInt(append(b, `,"seed":`...), *r.Seed, 10)
	}
	if r.User != "" && !r.extraHas("user") {
		b = appendString(append(b, `,"user":`...), r.User)
	}
	if r.ResponseFormat != nil && !r.extraHas("response_format") {
		if b, err = appendMarshal(append(b, `,"response_format":`...), r.ResponseFormat); err != nil {
			return nil, err
		}
	}
	if r.StreamOptions != nil && !r.extraHas("stream_options") {
		b = strconv.AppendBool(append(b, `,"stream_options":{"include_usage":`...), r.StreamOptions.IncludeUsage)
		b = append(b, '}')
	}
	if len(r.Extra) > 0 {
		keys := make([]string, 0, len(r.Extra))
		for k := range r.Extra {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			b = append(appendString(append(b, ','), k), ':')
			if b, err = appendRaw(b, r.Extra[k]); err != nil {
				return nil, fmt.Errorf("Extra[%q]: %w", k, err)
			}
		}
	}
	if len(b) == start {
		return append(b, '{', '}'), nil
	}
	b[start] = '{'
	return append(b, '}'), nil
}

// extraHas reports whether Extra sets the top-level field key (Extra wins).
func (r *ChatRequest) extraHas(key string) bool {
	if len(r.Extra) == 0 {
		return false
	}
	_, ok := r.Extra[key]
	return ok
}

// appendFloatField appends `,"key":` (member must be that, with its leading
// comma) and *v, unless v is nil or Extra sets the field.
func (r *ChatRequest) appendFloatField(b []byte, member string, v *float64) ([]byte, error) {
	if v == nil || r.extraHas(member[2:len(member)-2]) {
		return b, nil
	}
	return appendFloat(append(b, member...), *v)
}

func (r *ChatRequest) appendIntField(b []byte, member string, v *int) []byte {
	if v == nil || r.extraHas(member[2:len(member)-2]) {
		return b
	}
	return strconv.AppendInt(append(b, member...), int64(*v), 10)
}

// appendMessage appends the JSON of m: content as a string, an array of
// parts, or null (an assistant message with tool calls and no text).
func appendMessage(b []byte, m *Message) []byte {
	b = append(b, `{"role":`...)
	b = appendString(b, m.Role)
	b = append(b, `,"content":`...)
	switch {
	case m.Parts != nil:
		b = append(b, '[')
		for i := range m.Parts {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendPart(b, &m.Parts[i])
		}
		b = append(b, ']')
	case m.Content == "" && len(m.ToolCalls) > 0:
		b = append(b, "null"...)
	default:
		b = appendString(b, m.Content)
	}
	if m.Name != "" {
		b = appendString(append(b, `,"name":`...), m.Name)
	}
	if len(m.ToolCalls) > 0 {
		b = append(b, `,"tool_calls":[`...)
		for i := range m.ToolCalls {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendToolCall(b, &m.ToolCalls[i])
		}
		b = append(b, ']')
	}
	if m.ToolCallID != "" {
		b = appendString(append(b, `,"tool_call_id":`...), m.ToolCallID)
	}
	if m.Refusal != "" {
		b = appendString(append(b, `,"refusal":`...), m.Refusal)
	}
	return append(b, '}')
}

func appendPart(b []byte, p *ContentPart) []byte {
	b = appendString(append(b, `{"type":`...), p.Type)
	if p.Text != "" {
		b = appendString(append(b, `,"text":`...), p.Text)
	}
	if p.ImageURL != nil {
		b = appendString(append(b, `,"image_url":{"url":`...), p.ImageURL.URL)
		if p.ImageURL.Detail != "" {
			b = appendString(append(b, `,"detail":`...), p.ImageURL.Detail)
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

func appendToolCall(b []byte, c *ToolCall) []byte {
	b = append(b, '{')
	if c.Index != nil {
		b = append(strconv.AppendInt(append(b, `"index":`...), int64(*c.Index), 10), ',')
	}
	if c.ID != "" {
		b = append(appendString(append(b, `"id":`...), c.ID), ',')
	}
	if c.Type != "" {
		b = append(appendString(append(b, `"type":`...), c.Type), ',')
	}
	b = append(b, `"function":{`...)
	if c.Function.Name != "" {
		b = append(appendString(append(b, `"name":`...), c.Function.Name), ',')
	}
	b = appendString(append(b, `"arguments":`...), c.Function.Arguments)
	return append(b, '}', '}')
}

func appendTool(b []byte, t *Tool) ([]byte, error) {
	var err error
	b = appendString(append(b, `{"type":`...), t.Type)
	f := &t.Function
	b = appendString(append(b, `,"function":{"name":`...), f.Name)
	if f.Description != "" {
		b = appendString(append(b, `,"description":`...), f.Description)
	}
	if len(f.Parameters) > 0 {
		if b, err = appendRaw(append(b, `,"parameters":`...), f.Parameters); err != nil {
			return nil, err
		}
	}
	if f.Strict != nil {
		b = strconv.AppendBool(append(b, `,"strict":`...), *f.Strict)
	}
	return append(b, '}', '}'), nil
}

// appendRaw appends a verbatim JSON value, checked and compacted as
// encoding/json does with a json.RawMessage (nil is null).
func appendRaw(b []byte, raw json.RawMessage) ([]byte, error) {
	if raw == nil {
		return append(b, "null"...), nil
	}
	buf := bytes.NewBuffer(b)
	if err := json.Compact(buf, raw); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// appendMarshal appends v as encoding/json writes it.
func appendMarshal(b []byte, v any) ([]byte, error) {
	j, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, j...), nil
}

// appendFloat writes f as encoding/json does.
func appendFloat(b []byte, f float64) ([]byte, error) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return nil, &json.UnsupportedValueError{Str: strconv.FormatFloat(f, 'g', -1, 64)}
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, nil
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD, as
// with encoding/json.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
