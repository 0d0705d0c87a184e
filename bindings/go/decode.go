package llmux

// The response decoder. libllmux hands back a chat.completion (or chunk) of a
// regular shape; decoding it by hand avoids encoding/json's reflection and,
// above all, Message.UnmarshalJSON, which makes encoding/json scan a message
// three times. The fast path accepts only what it decodes exactly as
// encoding/json would: anything else — invalid JSON, a value of an
// unexpected type, a duplicate member, a name that matches a field only
// case-insensitively, a number that is not a plain integer — makes it give up,
// and the same bytes go through encoding/json, so results and errors are
// those of json.Unmarshal.

import (
	"bytes"
	"encoding/json"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// responseBlock allocates a response with room for one choice and the usage
// in one go; the decoder uses the room when the answer fits it.
type responseBlock struct {
	resp   ChatResponse
	choice [1]Choice
	usage  Usage
}

// newResponse decodes a chat.completion into a new *ChatResponse, as
// json.Unmarshal does.
func newResponse(data []byte) (*ChatResponse, error) {
	blk := &responseBlock{}
	d := decoder{data: data, blk: blk}
	if d.response(&blk.resp) && d.end() {
		return &blk.resp, nil
	}
	return fallback[ChatResponse](data)
}

// chunkBlock is responseBlock for a chunk.
type chunkBlock struct {
	chunk  ChatChunk
	choice [1]ChunkChoice
}

// newChunk decodes a chat.completion.chunk into a new *ChatChunk, as
// json.Unmarshal does.
func newChunk(data []byte) (*ChatChunk, error) {
	blk := &chunkBlock{}
	d := decoder{data: data, cblk: blk}
	if d.chunk(&blk.chunk) && d.end() {
		return &blk.chunk, nil
	}
	return fallback[ChatChunk](data)
}

// fallback decodes data into a new *T with encoding/json.
func fallback[T any](data []byte) (*T, error) {
	v := new(T)
	return v, json.Unmarshal(data, v)
}

// maxDepth bounds the nesting the fast path skips over; deeper input goes to
// encoding/json.
const maxDepth = 512

// decoder reads data from offset i. Every method returns false when the fast
// path cannot continue.
//
// Strings are copied into one private arena per document, as large as the
// document (string contents are never longer, bar U+FFFD replacements), and
// the strings point into it: one allocation instead of one per string. The
// arena is written only past its length and never exposed as bytes, so the
// strings stay immutable.
type decoder struct {
	data  []byte
	i     int
	arena []byte
	blk   *responseBlock // room for the first choice and the usage, if any
	cblk  *chunkBlock    // room for a chunk's first choice, if any
}

// text returns b as a string stored in the arena.
func (d *decoder) text(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if d.arena == nil {
		d.arena = make([]byte, 0, len(d.data))
	}
	off := len(d.arena)
	if cap(d.arena)-off < len(b) {
		return string(b)
	}
	d.arena = append(d.arena, b...)
	return unsafe.String(&d.arena[off], len(b))
}

func (d *decoder) ws() {
	for d.i < len(d.data) {
		switch d.data[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// peek skips white space and returns the next byte (0 at the end).
func (d *decoder) peek() byte {
	d.ws()
	if d.i < len(d.data) {
		return d.data[d.i]
	}
	return 0
}

func (d *decoder) eat(c byte) bool {
	if d.peek() != c {
		return false
	}
	d.i++
	return true
}

func (d *decoder) end() bool {
	d.ws()
	return d.i == len(d.data)
}

// object reads an object, calling member for each name (the raw bytes of a
// name without escapes) with the decoder at the value; null leaves the target
// alone, as encoding/json does. A name repeated, or with escapes, ends the
// fast path. Names are distinguished by the bit member returns for them (0
// for a name it skipped).
func (d *decoder) object(member func(name []byte) (bit uint32, ok bool)) bool {
	if d.peek() != '{' {
		return d.null()
	}
	d.i++
	if d.eat('}') {
		return true
	}
	var seen uint32
	for {
		if d.peek() != '"' {
			return false
		}
		d.i++
		start := d.i
		for d.i < len(d.data) && d.data[d.i] != '"' {
			if c := d.data[d.i]; c == '\\' || c < 0x20 {
				return false
			}
			d.i++
		}
		if d.i == len(d.data) {
			return false
		}
		name := d.data[start:d.i]
		d.i++
		if !d.eat(':') {
			return false
		}
		bit, ok := member(name)
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
		switch d.peek() {
		case ',':
			d.i++
		case '}':
			d.i++
			return true
		default:
			return false
		}
	}
}

// unknown skips the value of a member no field has, unless its name matches
// one of names case-insensitively, as encoding/json would match it.
func (d *decoder) unknown(name []byte, names ...string) (uint32, bool) {
	for _, n := range names {
		if bytes.EqualFold(name, []byte(n)) {
			return 0, false
		}
	}
	return 0, d.skip(0)
}

// null consumes a null literal if one is next.
func (d *decoder) null() bool {
	if d.peek() == 'n' && bytes.HasPrefix(d.data[d.i:], []byte("null")) {
		d.i += 4
		return true
	}
	return false
}

// str reads a string into *s; null leaves *s alone, as encoding/json does.
func (d *decoder) str(s *string) bool {
	if d.null() {
		return true
	}
	if d.peek() != '"' {
		return false
	}
	d.i++
	start := d.i
	ascii := true
	for d.i < len(d.data) {
		c := d.data[d.i]
		switch {
		case c == '"':
			seg := d.data[start:d.i]
			d.i++
			if !ascii && !utf8.Valid(seg) {
				return d.unquote(start, s)
			}
			*s = d.text(seg)
			return true
		case c == '\\':
			return d.unquote(start, s)
		case c < 0x20:
			return false
		case c >= utf8.RuneSelf:
			ascii = false
		}
		d.i++
	}
	return false
}

// unquote decodes the string whose contents start at start, with escapes or
// invalid UTF-8 (each invalid byte becomes U+FFFD, as with encoding/json).
//
// The string is written into the arena's free room when it fits (else into
// a new slice of its own, which is as private).
func (d *decoder) unquote(start int, s *string) bool {
	data := d.data
	if d.arena == nil {
		d.arena = make([]byte, 0, len(d.data))
	}
	b := d.arena[len(d.arena):]
	r := start
	for r < len(data) {
		c := data[r]
		switch {
		case c == '"':
			d.i = r + 1
			if len(b) == 0 {
				*s = ""
			} else {
				// b never outgrew the free room (it only grows), so it
				// is still in the arena: claim it.
				if len(d.arena)+len(b) <= cap(d.arena) {
					d.arena = d.arena[:len(d.arena)+len(b)]
				}
				*s = unsafe.String(&b[0], len(b))
			}
			return true
		case c == '\\':
			if r+1 >= len(data) {
				return false
			}
			switch data[r+1] {
			case '"', '\\', '/':
				b = append(b, data[r+1])
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				rr := hex4(data[r+2:])
				if rr < 0 {
					return false
				}
				r += 6
				if utf16.IsSurrogate(rr) {
					if len(data) >= r+2 && data[r] == '\\' && data[r+1] == 'u' {
						if rr1 := hex4(data[r+2:]); rr1 >= 0 {
							if dec := utf16.DecodeRune(rr, rr1); dec != utf8.RuneError {
								b = utf8.AppendRune(b, dec)
								r += 6
								continue
							}
						}
					}
					rr = utf8.RuneError
				}
				b = utf8.AppendRune(b, rr)
				continue
			default:
				return false
			}
			r += 2
		case c < 0x20:
			return false
		case c < utf8.RuneSelf:
			b = append(b, c)
			r++
		default:
			rr, size := utf8.DecodeRune(data[r:])
			if rr == utf8.RuneError && size == 1 {
				b = utf8.AppendRune(b, rr)
			} else {
				b = append(b, data[r:r+size]...)
			}
			r += size
		}
	}
	return false
}

// hex4 decodes the 4 hex digits at the start of p, or returns -1.
func hex4(p []byte) rune {
	if len(p) < 4 {
		return -1
	}
	var r rune
	for _, c := range p[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// int64 reads an integer into *v; null leaves *v alone. A fraction, an
// exponent or an overflow ends the fast path (encoding/json rejects them for
// an integer field).
func (d *decoder) int64(v *int64) bool {
	if d.null() {
		return true
	}
	d.ws()
	i, data := d.i, d.data
	neg := i < len(data) && data[i] == '-'
	if neg {
		i++
	}
	if i >= len(data) || data[i] < '0' || data[i] > '9' || (data[i] == '0' && i+1 < len(data) &&
		data[i+1] >= '0' && data[i+1] <= '9') {
		return false
	}
	var u uint64
	for ; i < len(data) && data[i] >= '0' && data[i] <= '9'; i++ {
		if u > (1<<63)/10 {
			return false
		}
		u = u*10 + uint64(data[i]-'0')
	}
	if i < len(data) && (data[i] == '.' || data[i] == 'e' || data[i] == 'E') {
		return false
	}
	if neg {
		if u > 1<<63 {
			return false
		}
		*v = -int64(u)
	} else {
		if u > 1<<63-1 {
			return false
		}
		*v = int64(u)
	}
	d.i = i
	return true
}

func (d *decoder) int(v *int) bool {
	x := int64(*v)
	if !d.int64(&x) || int64(int(x)) != x {
		return false
	}
	*v = int(x)
	return true
}

// raw copies the next value verbatim into *r (null included, as encoding/json
// does for a json.RawMessage).
func (d *decoder) raw(r *json.RawMessage) bool {
	d.ws()
	start := d.i
	if !d.skip(0) {
		return false
	}
	*r = append(json.RawMessage(nil), d.data[start:d.i]...)
	return true
}

// skip checks and skips one value.
func (d *decoder) skip(depth int) bool {
	if depth > maxDepth {
		return false
	}
	switch d.peek() {
	case '{':
		return d.object(func([]byte) (uint32, bool) { return 0, d.skip(depth + 1) })
	case '[':
		return d.array(func() bool { return d.skip(depth + 1) })
	case '"':
		d.i++
		for d.i < len(d.data) {
			c := d.data[d.i]
			switch {
			case c == '"':
				d.i++
				return true
			case c == '\\':
				if d.i+1 >= len(d.data) {
					return false
				}
				switch d.data[d.i+1] {
				case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
					d.i += 2
				case 'u':
					if hex4(d.data[d.i+2:]) < 0 {
						return false
					}
					d.i += 6
				default:
					return false
				}
				continue
			case c < 0x20:
				return false
			}
			d.i++
		}
		return false
	case 't':
		return d.literal("true")
	case 'f':
		return d.literal("false")
	case 'n':
		return d.literal("null")
	default:
		return d.number()
	}
}

func (d *decoder) literal(s string) bool {
	if !bytes.HasPrefix(d.data[d.i:], []byte(s)) {
		return false
	}
	d.i += len(s)
	return true
}

// number checks and skips a JSON number.
func (d *decoder) number() bool {
	data, i := d.data, d.i
	digits := func() bool {
		j := i
		for i < len(data) && data[i] >= '0' && data[i] <= '9' {
			i++
		}
		return i > j
	}
	if i < len(data) && data[i] == '-' {
		i++
	}
	if i < len(data) && data[i] == '0' {
		i++
	} else if !digits() {
		return false
	}
	if i < len(data) && data[i] == '.' {
		i++
		if !digits() {
			return false
		}
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if !digits() {
			return false
		}
	}
	d.i = i
	return true
}

// array reads an array, calling elem with the decoder at each element.
func (d *decoder) array(elem func() bool) bool {
	if !d.eat('[') {
		return false
	}
	if d.eat(']') {
		return true
	}
	for {
		if !elem() {
			return false
		}
		switch d.peek() {
		case ',':
			d.i++
		case ']':
			d.i++
			return true
		default:
			return false
		}
	}
}

// The members of ChatResponse, Choice, Usage, Message, ToolCall,
// FunctionCall, ChatChunk, ChunkChoice and Delta (the bits only tell members
// apart within one object).
var (
	responseNames = []string{"id", "object", "created", "model", "choices", "usage", "system_fingerprint"}
	choiceNames   = []string{"index", "message", "finish_reason", "logprobs"}
	usageNames    = []string{"prompt_tokens", "completion_tokens", "total_tokens", "prompt_tokens_details",
		"completion_tokens_details"}
	promptDNames     = []string{"cached_tokens", "cache_write_tokens"}
	completionDNames = []string{"reasoning_tokens"}
	messageNames     = []string{"role", "content", "name", "tool_calls", "tool_call_id", "refusal"}
	toolCallNames    = []string{"index", "id", "type", "function"}
	functionNames    = []string{"name", "arguments"}
	chunkNames       = []string{"id", "object", "created", "model", "choices", "usage"}
	chunkChNames     = []string{"index", "delta", "finish_reason"}
	deltaNames       = []string{"role", "content", "tool_calls", "refusal"}
)

func (d *decoder) response(r *ChatResponse) bool {
	return d.object(func(name []byte) (uint32, bool) {
		switch string(name) {
		case "choices":
			return 1 << 4, d.choices(&r.Choices)
		case "system_fingerprint":
			return 1 << 6, d.str(&r.SystemFingerprint)
		}
		return d.envelope(name, &r.ID, &r.Object, &r.Created, &r.Model, &r.Usage, responseNames)
	})
}

func (d *decoder) chunk(c *ChatChunk) bool {
	return d.object(func(name []byte) (uint32, bool) {
		if string(name) == "choices" {
			return 1 << 4, d.chunkChoices(&c.Choices)
		}
		return d.envelope(name, &c.ID, &c.Object, &c.Created, &c.Model, &c.Usage, chunkNames)
	})
}

// The members objects share are decoded in one place each: envelope,
// choiceBase and turn decode a member of the fields they are given (with
// bits their callers leave free), and hand any other to unknown with names,
// all the members of the caller's object.

// envelope decodes the members ChatResponse and ChatChunk share (bits 0-3
// and 5).
func (d *decoder) envelope(name []byte, id, object *string, created *int64, model *string, usage **Usage,
	names []string) (uint32, bool) {
	switch string(name) {
	case "id":
		return 1 << 0, d.str(id)
	case "object":
		return 1 << 1, d.str(object)
	case "created":
		return 1 << 2, d.int64(created)
	case "model":
		return 1 << 3, d.str(model)
	case "usage":
		return 1 << 5, d.usage(usage)
	}
	return d.unknown(name, names...)
}

// list reads an array into *dst, decoding each element with elem; null sets
// *dst to nil. The elements go into room while it lasts (a slice of length 0,
// or nil for a new one).
func list[T any](d *decoder, dst *[]T, room []T, elem func(*T) bool) bool {
	if d.null() {
		*dst = nil
		return true
	}
	out := room
	if out == nil {
		out = make([]T, 0, 1)
	}
	ok := d.array(func() bool {
		var zero T
		out = append(out, zero)
		return elem(&out[len(out)-1])
	})
	*dst = out
	return ok
}

func (d *decoder) choices(cs *[]Choice) bool {
	var room []Choice
	if d.blk != nil {
		room = d.blk.choice[:0:1]
	}
	return list(d, cs, room, d.choice)
}

func (d *decoder) chunkChoices(cs *[]ChunkChoice) bool {
	var room []ChunkChoice
	if d.cblk != nil {
		room = d.cblk.choice[:0:1]
	}
	return list(d, cs, room, d.chunkChoice)
}

// choiceBase decodes the members Choice and ChunkChoice share (bits 0 and 2).
func (d *decoder) choiceBase(name []byte, index *int, finishReason *string, names []string) (uint32, bool) {
	switch string(name) {
	case "index":
		return 1 << 0, d.int(index)
	case "finish_reason":
		return 1 << 2, d.str(finishReason)
	}
	return d.unknown(name, names...)
}

func (d *decoder) choice(c *Choice) bool {
	return d.object(func(name []byte) (uint32, bool) {
		switch string(name) {
		case "message":
			return 1 << 1, d.message(&c.Message)
		case "logprobs":
			return 1 << 3, d.raw(&c.Logprobs)
		}
		return d.choiceBase(name, &c.Index, &c.FinishReason, choiceNames)
	})
}

func (d *decoder) chunkChoice(c *ChunkChoice) bool {
	return d.object(func(name []byte) (uint32, bool) {
		if string(name) == "delta" {
			x := &c.Delta
			return 1 << 1, d.object(func(name []byte) (uint32, bool) {
				return d.turn(name, &x.Role, &x.Content, nil, &x.ToolCalls, &x.Refusal, deltaNames)
			})
		}
		return d.choiceBase(name, &c.Index, &c.FinishReason, chunkChNames)
	})
}

func (d *decoder) usage(u **Usage) bool {
	if d.null() {
		*u = nil
		return true
	}
	var x *Usage
	if d.blk != nil {
		x = &d.blk.usage
	} else {
		x = new(Usage)
	}
	*u = x
	return d.object(func(name []byte) (uint32, bool) {
		switch string(name) {
		case "prompt_tokens":
			return 1 << 0, d.int(&x.PromptTokens)
		case "completion_tokens":
			return 1 << 1, d.int(&x.CompletionTokens)
		case "total_tokens":
			return 1 << 2, d.int(&x.TotalTokens)
		case "prompt_tokens_details":
			p := &x.PromptTokensDetails
			return 1 << 3, d.object(func(name []byte) (uint32, bool) {
				switch string(name) {
				case "cached_tokens":
					return 1 << 0, d.int(&p.CachedTokens)
				case "cache_write_tokens":
					return 1 << 1, d.int(&p.CacheWriteTokens)
				}
				return d.unknown(name, promptDNames...)
			})
		case "completion_tokens_details":
			c := &x.CompletionTokensDetails
			return 1 << 4, d.object(func(name []byte) (uint32, bool) {
				if string(name) == "reasoning_tokens" {
					return 1 << 0, d.int(&c.ReasoningTokens)
				}
				return d.unknown(name, completionDNames...)
			})
		}
		return d.unknown(name, usageNames...)
	})
}

// message decodes as Message.UnmarshalJSON does: content is a string, null,
// or an array of parts (which goes through encoding/json).
func (d *decoder) message(m *Message) bool {
	*m = Message{}
	return d.object(func(name []byte) (uint32, bool) {
		switch string(name) {
		case "name":
			return 1 << 2, d.str(&m.Name)
		case "tool_call_id":
			return 1 << 4, d.str(&m.ToolCallID)
		}
		return d.turn(name, &m.Role, &m.Content, &m.Parts, &m.ToolCalls, &m.Refusal, messageNames)
	})
}

// turn decodes the members Message and Delta share (bits 0, 1, 3 and 5).
// Content is a string or null, or, when parts is not nil, an array of parts.
func (d *decoder) turn(name []byte, role, content *string, parts *[]ContentPart, toolCalls *[]ToolCall,
	refusal *string, names []string) (uint32, bool) {
	switch string(name) {
	case "role":
		return 1 << 0, d.str(role)
	case "content":
		if parts != nil && d.peek() == '[' {
			start := d.i
			if !d.skip(0) {
				return 0, false
			}
			return 1 << 1, json.Unmarshal(d.data[start:d.i], parts) == nil
		}
		return 1 << 1, d.str(content)
	case "tool_calls":
		return 1 << 3, list(d, toolCalls, nil, d.toolCall)
	case "refusal":
		return 1 << 5, d.str(refusal)
	}
	return d.unknown(name, names...)
}

func (d *decoder) toolCall(c *ToolCall) bool {
	return d.object(func(name []byte) (uint32, bool) {
		switch string(name) {
		case "index":
			if d.null() {
				c.Index = nil
				return 1 << 0, true
			}
			c.Index = new(int)
			return 1 << 0, d.int(c.Index)
		case "id":
			return 1 << 1, d.str(&c.ID)
		case "type":
			return 1 << 2, d.str(&c.Type)
		case "function":
			f := &c.Function
			return 1 << 3, d.object(func(name []byte) (uint32, bool) {
				switch string(name) {
				case "name":
					return 1 << 0, d.str(&f.Name)
				case "arguments":
					return 1 << 1, d.str(&f.Arguments)
				}
				return d.unknown(name, functionNames...)
			})
		}
		return d.unknown(name, toolCallNames...)
	})
}
