package llmux_test

// An Azure OpenAI target (type "azure") through the simulator's Azure routes:
// both routes and both kinds of auth, a tool call and its result turn, a
// stream that agrees with the plain call, and Azure's error classes.

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	llmux "github.com/llmux/llmux/bindings/go"
)

const (
	azureKeyEnv   = "LLMUX_GO_TEST_AZURE_KEY"
	azureTokenEnv = "LLMUX_GO_TEST_AZURE_TOKEN"
)

// openAzure opens a gateway whose alias "az" is the Azure deployment
// "gpt4o-prod" on the simulator deployment dep; keys are the provider's own.
func openAzure(t *testing.T, dep string, keys map[string]string) *llmux.Gateway {
	t.Helper()
	os.Setenv(azureKeyEnv, "az-go-key")
	os.Setenv(azureTokenEnv, "az-go-token")
	p := map[string]string{"type": "azure", "base_url": simURL + "/" + dep}
	for k, v := range keys {
		p[k] = v
	}
	cfg, _ := json.Marshal(map[string]any{
		"providers": map[string]any{"azp": p},
		"models":    map[string]any{"az": map[string]any{"targets": []target{{Provider: "azp", Model: "gpt4o-prod"}}}},
		"defaults":  map[string]int64{"timeout_ms": 10000, "connect_timeout_ms": 2000},
	})
	gw, err := llmux.Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v\n%s", err, cfg)
	}
	t.Cleanup(func() { gw.Close() })
	return gw
}

func azAsk(text string) *llmux.ChatRequest {
	return &llmux.ChatRequest{Model: "az", Messages: []llmux.Message{llmux.UserMessage(text)}}
}

func TestAzureDeploymentsRouteWithAPIKey(t *testing.T) {
	t.Parallel()
	dep := deployment(t, "az")
	simPut(t, dep, `{"require_key":"az-go-key"}`)
	gw := openAzure(t, dep, map[string]string{"api_version": "2024-10-21", "api_key_env": azureKeyEnv})
	resp := mustChat(t, gw, azAsk("hello azure"))
	if got, want := resp.Choices[0].Message.Content, "["+dep+"] hello azure"; got != want {
		t.Errorf("content = %q, want %q", got, want)
	}
	last := simGet(t, dep).LastRequest
	if want := "/" + dep + "/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21"; last.Path != want {
		t.Errorf("path = %q, want %q", last.Path, want)
	}
	if last.Authorization != "api-key: az-go-key" {
		t.Errorf("authorization = %q, want the api-key header", last.Authorization)
	}
}

func TestAzureV1ToolCallAndResultTurn(t *testing.T) {
	t.Parallel()
	dep := deployment(t, "az")
	simPut(t, dep, `{"require_key":"az-go-token"}`)
	gw := openAzure(t, dep, map[string]string{"bearer_token_env": azureTokenEnv})
	req := azAsk("weather in Oslo")
	req.Tools = []llmux.Tool{llmux.FunctionTool("get_weather", "", json.RawMessage(`{"type":"object"}`))}
	req.ToolChoice = "required"
	resp := mustChat(t, gw, req)
	calls := resp.Choices[0].Message.ToolCalls
	if resp.Choices[0].FinishReason != "tool_calls" || len(calls) != 1 || calls[0].Function.Name != "get_weather" ||
		calls[0].Function.Arguments != `{"echo":"weather in Oslo"}` {
		t.Fatalf("answer = %s, want one get_weather call", resp.Raw)
	}
	last := simGet(t, dep).LastRequest
	if last.Path != "/"+dep+"/openai/v1/chat/completions" || last.Authorization != "Bearer az-go-token" {
		t.Errorf("path %q, authorization %q: want the v1 route with the bearer token", last.Path, last.Authorization)
	}

	req.ToolChoice = nil
	req.Messages = append(req.Messages, resp.Choices[0].Message,
		llmux.ToolMessage(calls[0].ID, "sunny"), llmux.UserMessage("thanks"))
	resp2 := mustChat(t, gw, req)
	if got := resp2.Choices[0].Message.Content; got != "["+dep+"] thanks" {
		t.Errorf("result turn answered %q", got)
	}
}

func TestAzureStreamAgrees(t *testing.T) {
	t.Parallel()
	dep := deployment(t, "az")
	gw := openAzure(t, dep, map[string]string{"api_version": "2024-10-21"})
	plain := mustChat(t, gw, azAsk("one two three"))
	s, err := gw.ChatStream(context.Background(), azAsk("one two three"))
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	for c, err := range s.All() {
		if err != nil {
			t.Fatal(err)
		}
		// Azure's prompt-filter chunk (no choices) never reaches the caller
		if len(c.Choices) == 0 && c.Usage == nil {
			t.Errorf("a chunk without choices or usage: %s", c.Raw)
		}
		text.WriteString(c.Text())
	}
	streamed, err := s.Result()
	if err != nil {
		t.Fatal(err)
	}
	if text.String() != plain.Choices[0].Message.Content || streamed.Choices[0].FinishReason != "stop" ||
		streamed.Usage.CompletionTokens != plain.Usage.CompletionTokens {
		t.Errorf("streamed %q (%s), plain %s", text.String(), streamed.Raw, plain.Raw)
	}
}

func TestAzureErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		status int
		want   error
		code   string
	}{
		{400, llmux.ErrContentFilter, "content_filter"},
		{429, llmux.ErrRateLimit, "429"},
		{404, llmux.ErrNotFound, "DeploymentNotFound"},
		{401, llmux.ErrAuth, "401"},
	}
	for _, tc := range cases {
		dep := deployment(t, "az")
		simPut(t, dep, `{"faults":[{"type":"status","status":`+jsonInt(tc.status)+`,"retry_after":"3"}]}`)
		gw := openAzure(t, dep, map[string]string{"api_version": "2024-10-21"})
		_, err := gw.Chat(context.Background(), azAsk("x"))
		if !errors.Is(err, tc.want) {
			t.Errorf("%d: error %v, want %v", tc.status, err, tc.want)
			continue
		}
		e := asError(t, err)
		at := e.Meta.Trace.Attempts
		code := `"provider_code":"` + tc.code + `"`
		if e.HTTPStatus != tc.status || len(at) != 1 || at[0].RetryAfterMS == nil || *at[0].RetryAfterMS != 3000 ||
			!strings.Contains(string(e.Meta.Trace.Raw), code) {
			t.Errorf("%d: http %d, trace %s; want %s and retry_after_ms 3000",
				tc.status, e.HTTPStatus, e.Meta.Trace.Raw, code)
		}
	}
}

func jsonInt(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
