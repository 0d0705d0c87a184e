package llmux_test

// A Bedrock target through the Go binding: SigV4-signed calls to the
// simulator's Converse API (it verifies the signature with its test secret),
// a tool call and its result turn, a stream, and errors by class.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	llmux "github.com/llmux/llmux/bindings/go"
)

const bedrockSimSecret = "llmux-sim-bedrock-secret" // tools/llmux-sim/bedrock.h

// Set before any test runs: C reads the environment at Open, and setenv
// racing a getenv on another thread is undefined.
func init() {
	os.Setenv("LLMUX_GO_AWS_AK", "AKIDGOTEST")
	os.Setenv("LLMUX_GO_AWS_SK", bedrockSimSecret)
	os.Setenv("LLMUX_GO_AWS_BAD_SK", "not-the-secret")
}

func openBedrock(t *testing.T, dep, secretEnv string) *llmux.Gateway {
	t.Helper()
	cfg := fmt.Sprintf(`{"providers":{"aws":{"type":"bedrock","region":"us-east-1","base_url":%q,`+
		`"access_key_id_env":"LLMUX_GO_AWS_AK","secret_access_key_env":%q}},`+
		`"models":{"smart":{"targets":[{"provider":"aws","model":"anthropic.claude-3-haiku-20240307-v1:0"}]}},`+
		`"defaults":{"timeout_ms":10000,"connect_timeout_ms":2000}}`, simURL+"/"+dep, secretEnv)
	gw, err := llmux.Open([]byte(cfg))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { gw.Close() })
	return gw
}

func TestBedrockChat(t *testing.T) {
	t.Parallel()
	dep := deployment(t, "br")
	gw := openBedrock(t, dep, "LLMUX_GO_AWS_SK")
	resp := mustChat(t, gw, ask("hello there"))
	if resp.Text() != "["+dep+"] hello there" || resp.Choices[0].FinishReason != "stop" {
		t.Errorf("answer %s", resp.Raw)
	}
	st := simGet(t, dep)
	if st.LastRequest.Path != "/"+dep+"/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse" ||
		!strings.HasPrefix(st.LastRequest.Authorization, "AWS4-HMAC-SHA256 Credential=AKIDGOTEST/") {
		t.Errorf("the simulator got %s with %q", st.LastRequest.Path, st.LastRequest.Authorization)
	}
	if string(st.LastRequest.Body) != `{"messages":[{"role":"user","content":[{"text":"hello there"}]}]}` {
		t.Errorf("body %s", st.LastRequest.Body)
	}
}

func TestBedrockToolCallAndStream(t *testing.T) {
	t.Parallel()
	dep := deployment(t, "br")
	gw := openBedrock(t, dep, "LLMUX_GO_AWS_SK")
	params := json.RawMessage(`{"type":"object","properties":{"echo":{"type":"string"}}}`)
	tools := []llmux.Tool{llmux.FunctionTool("weather", "Weather", params)}
	req := ask("weather in Oslo")
	req.Tools = tools
	req.ToolChoice = "required"
	resp := mustChat(t, gw, req)
	calls := resp.ToolCalls()
	if len(calls) != 1 || calls[0].ID != "tooluse_sim_1" || calls[0].Function.Name != "weather" ||
		calls[0].Function.Arguments != `{"echo":"weather in Oslo"}` || resp.Choices[0].FinishReason != "tool_calls" {
		t.Fatalf("tool call %s", resp.Raw)
	}
	next := &llmux.ChatRequest{Model: "smart", Tools: tools, Messages: []llmux.Message{
		llmux.UserMessage("weather in Oslo"), resp.Choices[0].Message,
		llmux.ToolMessage(calls[0].ID, "sunny"), llmux.UserMessage("thanks"),
	}}
	if r := mustChat(t, gw, next); r.Text() != "["+dep+"] thanks" {
		t.Errorf("result turn %s", r.Raw)
	}

	// the same call streamed: the assembled answer agrees
	s, err := gw.ChatStream(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	var args strings.Builder
	for c, err := range s.All() {
		if err != nil {
			t.Fatal(err)
		}
		for _, ch := range c.Choices {
			for _, tc := range ch.Delta.ToolCalls {
				args.WriteString(tc.Function.Arguments)
			}
		}
	}
	sr, err := s.Result()
	if err != nil {
		t.Fatal(err)
	}
	if args.String() != `{"echo":"weather in Oslo"}` || sr.ToolCalls()[0].Function.Arguments != args.String() ||
		sr.Choices[0].FinishReason != "tool_calls" {
		t.Errorf("streamed %q, assembled %s", args.String(), sr.Raw)
	}
}

func TestBedrockErrors(t *testing.T) {
	t.Parallel()
	dep := deployment(t, "br")
	simPut(t, dep, `{"faults":[{"type":"status","status":429},`+
		`{"type":"status","status":400,"body":{"message":"Input is too long for requested model."}}]}`)
	gw := openBedrock(t, dep, "LLMUX_GO_AWS_SK")
	_, err := gw.Chat(context.Background(), ask("hi"))
	if e := wantClass(t, err, llmux.ErrRateLimit); !strings.Contains(e.Message, "ThrottlingException") {
		t.Errorf("message %q", e.Message)
	}
	_, err = gw.Chat(context.Background(), ask("hi"))
	wantClass(t, err, llmux.ErrContextWindow)

	bad := openBedrock(t, deployment(t, "br"), "LLMUX_GO_AWS_BAD_SK")
	_, err = bad.Chat(context.Background(), ask("hi"))
	e := wantClass(t, err, llmux.ErrAuth)
	if !strings.Contains(e.Message, "InvalidSignatureException") || strings.Contains(err.Error(), "not-the-secret") {
		t.Errorf("message %q", e.Message)
	}
	if !errors.Is(err, llmux.ErrAuth) {
		t.Errorf("not an auth error: %v", err)
	}
}
