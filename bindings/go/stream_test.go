package llmux_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	llmux "github.com/llmux/llmux/bindings/go"
)

func TestStreamOrder(t *testing.T) {
	t.Parallel()
	dep := deployment(t, "a")
	gw := openChain(t, dep)
	req := ask("the quick brown fox")
	req.StreamOptions = &llmux.StreamOptions{IncludeUsage: true}

	s, err := gw.ChatStream(context.Background(), req, llmux.WithTask("stream"), llmux.WithTrace())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var chunks []*llmux.ChatChunk
	var text strings.Builder
	for s.Next() {
		c := s.Chunk()
		chunks = append(chunks, c)
		text.WriteString(c.Text())
	}
	if err := s.Err(); err != nil {
		t.Fatalf("Err() = %v", err)
	}
	want := "[" + dep + "] the quick brown fox"
	if text.String() != want {
		t.Errorf("streamed text %q, want %q", text.String(), want)
	}
	// role chunk, 5 words, finish chunk, usage chunk
	if len(chunks) != 8 {
		t.Fatalf("%d chunks, want 8", len(chunks))
	}
	if chunks[0].Choices[0].Delta.Role != "assistant" {
		t.Errorf("first chunk = %s", chunks[0].Raw)
	}
	for i, c := range chunks {
		if c.Object != "chat.completion.chunk" || c.ID != chunks[0].ID || len(c.Raw) == 0 {
			t.Errorf("chunk %d = %s", i, c.Raw)
		}
	}
	if fr := chunks[6].Choices[0].FinishReason; fr != "stop" {
		t.Errorf("finish chunk = %s", chunks[6].Raw)
	}
	if u := chunks[7].Usage; u == nil || len(chunks[7].Choices) != 0 || u.CompletionTokens != 5 {
		t.Errorf("usage chunk = %s", chunks[7].Raw)
	}

	resp, err := s.Result()
	if err != nil {
		t.Fatal(err)
	}
	if resp.Text() != want || resp.Choices[0].FinishReason != "stop" || resp.Object != "chat.completion" {
		t.Errorf("assembled = %s", resp.Raw)
	}
	if resp.Meta.Provider != "p0" || !resp.Meta.Trace.Stream || resp.Meta.Trace.Chunks != 8 ||
		resp.Meta.Trace.Task != "stream" {
		t.Errorf("meta = %+v, trace %s", resp.Meta, resp.Meta.Trace.Raw)
	}
	var sent map[string]any
	json.Unmarshal(simGet(t, dep).LastRequest.Body, &sent)
	if sent["stream"] != true {
		t.Errorf("request was not sent with stream:true: %v", sent)
	}
}

func TestStreamAllIterator(t *testing.T) {
	t.Parallel()
	dep := deployment(t, "a")
	gw := openChain(t, dep)
	s, err := gw.ChatStream(context.Background(), ask("a b c"))
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	for c, err := range s.All() {
		if err != nil {
			t.Fatal(err)
		}
		text.WriteString(c.Text())
	}
	if text.String() != "["+dep+"] a b c" {
		t.Errorf("text %q", text.String())
	}
	if resp, err := s.Result(); err != nil || resp.Text() != text.String() {
		t.Errorf("Result() = %v, %v", resp, err)
	}
}

func TestStreamResultWithoutReading(t *testing.T) {
	t.Parallel()
	dep := deployment(t, "a")
	gw := openChain(t, dep)
	s, err := gw.ChatStreamJSON(context.Background(),
		[]byte(`{"model":"smart","messages":[{"role":"user","content":"just the result"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := s.Result()
	if err != nil || resp.Text() != "["+dep+"] just the result" {
		t.Fatalf("Result() = %v, %v", resp, err)
	}
}

func TestStreamToolCall(t *testing.T) {
	t.Parallel()
	dep := deployment(t, "a")
	gw := openChain(t, dep)
	req := ask("stream a call")
	req.Tools = []llmux.Tool{llmux.FunctionTool("lookup", "", nil)}
	req.ToolChoice = "required"

	s, err := gw.ChatStream(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	var args strings.Builder
	var name, id string
	for c, err := range s.All() {
		if err != nil {
			t.Fatal(err)
		}
		for _, ch := range c.Choices {
			for _, tc := range ch.Delta.ToolCalls {
				if tc.Index == nil || *tc.Index != 0 {
					t.Errorf("tool call delta without index 0: %s", c.Raw)
				}
				name += tc.Function.Name
				id += tc.ID
				args.WriteString(tc.Function.Arguments)
			}
		}
	}
	if name != "lookup" || !strings.HasPrefix(id, "call_sim_") || args.String() != `{"echo":"stream a call"}` {
		t.Errorf("streamed call %q %q %q", id, name, args.String())
	}
	resp, err := s.Result()
	if err != nil {
		t.Fatal(err)
	}
	calls := resp.ToolCalls()
	if len(calls) != 1 || calls[0].Function.Name != "lookup" || calls[0].Function.Arguments != args.String() ||
		resp.Choices[0].FinishReason != "tool_calls" {
		t.Errorf("assembled = %s", resp.Raw)
	}
}

func TestStreamFallbackBeforeFirstChunk(t *testing.T) {
	t.Parallel()
	a, b := deployment(t, "a"), deployment(t, "b")
	simPut(t, a, `{"faults":[{"type":"status","status":500,"count":-1}]}`)
	gw := openChain(t, a, b)

	s, err := gw.ChatStream(context.Background(), ask("fall back"), llmux.WithTrace())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := s.Result()
	if err != nil {
		t.Fatal(err)
	}
	if resp.Text() != "["+b+"] fall back" || resp.Meta.Provider != "p1" || len(resp.Meta.Trace.Attempts) != 2 {
		t.Errorf("resp %q from %q, trace %s", resp.Text(), resp.Meta.Provider, resp.Meta.Trace.Raw)
	}
}

// A call that fails before its first chunk fails in ChatStream itself.
func TestStreamError(t *testing.T) {
	t.Parallel()
	gw := openChain(t, deployment(t, "a"))
	req := ask("x")
	req.Model = "nope"
	s, err := gw.ChatStream(context.Background(), req)
	if s != nil || !errors.Is(err, llmux.ErrUnknownModel) {
		t.Fatalf("ChatStream() = %v, %v; want nil, ErrUnknownModel", s, err)
	}
	s, err = gw.ChatStreamJSON(context.Background(), []byte(`{"model":"nope","messages":[{"role":"user","content":"x"}]}`))
	if s != nil || !errors.Is(err, llmux.ErrUnknownModel) {
		t.Fatalf("ChatStreamJSON() = %v, %v; want nil, ErrUnknownModel", s, err)
	}
}

func TestStreamEveryTargetFailed(t *testing.T) {
	t.Parallel()
	a, b := deployment(t, "a"), deployment(t, "b")
	simPut(t, a, `{"faults":[{"type":"status","status":429,"count":-1}]}`)
	simPut(t, b, `{"faults":[{"type":"status","status":503,"count":-1}]}`)
	gw := openChain(t, a, b)

	s, err := gw.ChatStream(context.Background(), ask("nobody answers"))
	if s != nil {
		t.Fatalf("ChatStream() gave a stream (and %v) when every target failed", err)
	}
	e := asError(t, err)
	// the throttled attempt names the call (a retry later can succeed), not the later 503
	if e.Code != llmux.StatusRateLimit || e.HTTPStatus != 429 || e.Meta.Provider != "p0" {
		t.Errorf("error %v: class %d, HTTP %d, provider %q", err, e.Code, e.HTTPStatus, e.Meta.Provider)
	}
	if at := e.Meta.Trace.Attempts; len(at) != 2 || at[0].HTTPStatus != 429 || at[1].HTTPStatus != 503 {
		t.Errorf("attempts = %+v, want 429 then 503", at)
	}
}

// The context ends while ChatStream waits for the first chunk.
func TestStreamCancelBeforeFirstChunk(t *testing.T) {
	t.Parallel()
	dep := deployment(t, "a")
	simPut(t, dep, `{"faults":[{"type":"latency","ms":1500,"count":-1}]}`)
	gw := openChain(t, dep)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)

	start := time.Now()
	s, err := gw.ChatStream(ctx, ask("slow"))
	if took := time.Since(start); took > time.Second {
		t.Errorf("ChatStream returned after %v, want at the cancel (100ms)", took)
	}
	if s != nil || !errors.Is(err, context.Canceled) || !errors.Is(err, llmux.ErrCancelled) {
		t.Errorf("ChatStream() = %v, %v; want nil, an error matching context.Canceled and ErrCancelled", s, err)
	}
}

func TestStreamDroppedMidway(t *testing.T) {
	t.Parallel()
	a, b := deployment(t, "a"), deployment(t, "b")
	simPut(t, a, `{"faults":[{"type":"stream_drop","count":-1}]}`)
	gw := openChain(t, a, b)

	s, err := gw.ChatStream(context.Background(), ask("one two three four five six"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for s.Next() {
		n++
	}
	if n == 0 {
		t.Fatal("no chunk before the drop")
	}
	e := asError(t, s.Err())
	if e.Code == llmux.StatusOK {
		t.Fatalf("a dropped stream ended without error")
	}
	// Chunks were delivered, so there is no fallback to b.
	if simGet(t, b).Requests != 0 {
		t.Errorf("fell back after the first chunk")
	}
	t.Logf("dropped stream: %v after %d chunks", s.Err(), n)
}

func TestStreamContextCancel(t *testing.T) {
	t.Parallel()
	dep := deployment(t, "a")
	simPut(t, dep, `{"faults":[{"type":"slow_stream","ms":50,"count":-1}]}`)
	gw := openChain(t, dep)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	words := strings.Repeat("word ", 80) // ~4s of chunks at 50ms each

	start := time.Now()
	s, err := gw.ChatStream(ctx, ask(words))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for s.Next() {
		n++
		if n == 3 {
			cancel()
		}
	}
	if n != 3 {
		t.Errorf("%d chunks after cancelling at the third", n)
	}
	if err := s.Err(); !errors.Is(err, llmux.ErrCancelled) || !errors.Is(err, context.Canceled) {
		t.Errorf("Err() = %v, want ErrCancelled and context.Canceled", err)
	}
	_, err = s.Result()
	e := wantClass(t, err, llmux.ErrCancelled)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Result() error %v should match context.Canceled", err)
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("the transfer ran %v after cancel", elapsed)
	}
	if e.Meta.Trace.Chunks < 3 || e.Meta.Trace.Chunks > 3+16+1 {
		t.Errorf("trace says %d chunks were delivered", e.Meta.Trace.Chunks)
	}
}

func TestStreamEarlyBreak(t *testing.T) {
	t.Parallel()
	dep := deployment(t, "a")
	simPut(t, dep, `{"faults":[{"type":"slow_stream","ms":20,"count":-1}]}`)
	gw := openChain(t, dep)

	s, err := gw.ChatStream(context.Background(), ask(strings.Repeat("word ", 50)))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	n := 0
	for _, err := range s.All() {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 2 {
			break
		}
	}
	if s.Next() {
		t.Error("Next() after break")
	}
	_, err = s.Result()
	wantClass(t, err, llmux.ErrCancelled)
	if errors.Is(err, context.Canceled) {
		t.Error("a break is not a context cancellation")
	}
	if elapsed := time.Since(start); elapsed > 700*time.Millisecond {
		t.Errorf("the transfer ran %v after the break", elapsed)
	}
	// The gateway is still fine.
	if resp := mustChat(t, gw, ask("after")); resp.Text() != "["+dep+"] after" {
		t.Errorf("Text() = %q", resp.Text())
	}
}

func TestStreamCloseFromAnotherGoroutine(t *testing.T) {
	t.Parallel()
	dep := deployment(t, "a")
	simPut(t, dep, `{"faults":[{"type":"slow_stream","ms":20,"count":-1}]}`)
	gw := openChain(t, dep)
	s, err := gw.ChatStream(context.Background(), ask(strings.Repeat("word ", 50)))
	if err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(100*time.Millisecond, func() { s.Close() })
	n := 0
	for s.Next() {
		n++
	}
	if s.Err() != nil || n == 0 || n > 20 {
		t.Errorf("after Close: %d chunks, Err() = %v", n, s.Err())
	}
	if _, err := s.Result(); !errors.Is(err, llmux.ErrCancelled) {
		t.Errorf("Result() = %v", err)
	}
	s.Close() // idempotent
}

func TestStreamContextDeadline(t *testing.T) {
	t.Parallel()
	dep := deployment(t, "a")
	simPut(t, dep, `{"faults":[{"type":"slow_stream","ms":50,"count":-1}]}`)
	gw := openChain(t, dep)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()

	s, err := gw.ChatStream(ctx, ask(strings.Repeat("word ", 40)))
	if err != nil {
		t.Fatal(err)
	}
	for s.Next() {
	}
	if err := s.Err(); !errors.Is(err, llmux.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Err() = %v, want ErrTimeout and context.DeadlineExceeded", err)
	}
	if _, err := s.Result(); err == nil {
		t.Error("Result() succeeded after the deadline")
	}
}
