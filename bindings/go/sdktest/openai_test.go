// Package sdktest runs the official openai-go SDK through llmux.RoundTripper
// against llmux-sim. It is a module of its own so that the llmux Go module
// does not require the SDK: `cd bindings/go/sdktest && go test ./...` (with
// LLMUX_SIM set, as for the binding's own tests).
package sdktest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	llmux "github.com/llmux/llmux/bindings/go"
	"github.com/openai/openai-go"
	"github.com/openai/openai-go/option"
	"github.com/openai/openai-go/shared"
)

var simURL string

func TestMain(m *testing.M) {
	sim := os.Getenv("LLMUX_SIM")
	if sim == "" {
		fmt.Fprintln(os.Stderr, "sdktest: set LLMUX_SIM to the llmux-sim binary")
		os.Exit(2)
	}
	dir, err := os.MkdirTemp("", "llmux-sdktest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	portFile := filepath.Join(dir, "port")
	cmd := exec.Command(sim, "--port", "0", "--port-file", portFile, "--quiet")
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	for i := 0; i < 1500 && simURL == ""; i++ {
		if b, err := os.ReadFile(portFile); err == nil && strings.HasSuffix(string(b), "\n") {
			simURL = "http://127.0.0.1:" + strings.TrimSpace(string(b))
		} else {
			time.Sleep(10 * time.Millisecond)
		}
	}
	code := 2
	if simURL != "" {
		code = m.Run()
	}
	_ = cmd.Process.Signal(os.Interrupt)
	_ = cmd.Wait()
	os.RemoveAll(dir)
	os.Exit(code)
}

var seq int

func gateway(t *testing.T) (*llmux.Gateway, string) {
	t.Helper()
	seq++
	dep := "sdktest-" + strconv.Itoa(seq) + "-" + strconv.FormatInt(time.Now().UnixNano()%1e6, 10)
	cfg := `{"providers":{"p0":{"type":"openai","base_url":"` + simURL + "/" + dep + `/v1"}},
	  "models":{"smart":{"targets":[{"provider":"p0","model":"m-0"}]}},
	  "defaults":{"timeout_ms":10000,"connect_timeout_ms":2000}}`
	gw, err := llmux.Open([]byte(cfg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.Close() })
	return gw, dep
}

func client(gw *llmux.Gateway) openai.Client {
	return openai.NewClient(
		option.WithBaseURL("http://llmux/v1"),
		option.WithAPIKey("gk-go-sdk"),
		option.WithMaxRetries(0),
		option.WithHTTPClient(&http.Client{Transport: llmux.RoundTripper(gw)}),
	)
}

func simFaults(t *testing.T, dep, settings string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, simURL+"/_sim/deployments/"+dep, strings.NewReader(settings))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("PUT faults: %v %v", resp, err)
	}
	resp.Body.Close()
}

func params(text string) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model:    "smart",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(text)},
	}
}

func TestCreate(t *testing.T) {
	gw, dep := gateway(t)
	c := client(gw)
	var raw *http.Response
	resp, err := c.Chat.Completions.New(context.Background(), params("hello there"), option.WithResponseInto(&raw),
		option.WithHeader("X-Llmux-Task", "classify"))
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Choices[0].Message.Content; got != "["+dep+"] hello there" {
		t.Fatalf("content %q", got)
	}
	if resp.Usage.CompletionTokens != 3 {
		t.Fatalf("usage %+v", resp.Usage)
	}
	if raw.Header.Get("X-Llmux-Provider") != "p0" || raw.Header.Get("X-Llmux-Model") != "m-0" {
		t.Fatalf("headers %v", raw.Header)
	}
	meta, ok := gw.CallMeta(raw.Header.Get("X-Llmux-Call-Id"))
	if !ok || meta.Trace.Task != "classify" {
		t.Fatalf("CallMeta %v %+v", ok, meta.Trace)
	}
}

func TestStream(t *testing.T) {
	gw, dep := gateway(t)
	c := client(gw)
	p := params("one two three")
	p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	s := c.Chat.Completions.NewStreaming(context.Background(), p)
	acc := openai.ChatCompletionAccumulator{}
	var text strings.Builder
	n := 0
	for s.Next() {
		ch := s.Current()
		acc.AddChunk(ch)
		n++
		if len(ch.Choices) > 0 {
			text.WriteString(ch.Choices[0].Delta.Content)
		}
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	want := "[" + dep + "] one two three"
	if text.String() != want || acc.Choices[0].Message.Content != want || acc.Usage.CompletionTokens != 4 {
		t.Fatalf("text %q, accumulated %+v, %d chunks", text.String(), acc.ChatCompletion.Choices, n)
	}
}

func TestToolsAndToolResult(t *testing.T) {
	gw, dep := gateway(t)
	c := client(gw)
	p := params("find it")
	p.Tools = []openai.ChatCompletionToolParam{{Function: shared.FunctionDefinitionParam{
		Name:       "lookup",
		Parameters: shared.FunctionParameters{"type": "object", "properties": map[string]any{"echo": map[string]any{"type": "string"}}},
	}}}
	p.ToolChoice = openai.ChatCompletionToolChoiceOptionUnionParam{OfAuto: openai.String("required")}
	resp, err := c.Chat.Completions.New(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	call := resp.Choices[0].Message.ToolCalls[0]
	if call.Function.Name != "lookup" || call.Function.Arguments != `{"echo":"find it"}` {
		t.Fatalf("tool call %+v", call)
	}
	p.Messages = append(p.Messages, resp.Choices[0].Message.ToParam(), openai.ToolMessage("42", call.ID))
	p.ToolChoice = openai.ChatCompletionToolChoiceOptionUnionParam{}
	resp, err = c.Chat.Completions.New(context.Background(), p)
	if err != nil || resp.Choices[0].Message.Content != "["+dep+"] find it" {
		t.Fatalf("after the tool result: %v %+v", err, resp)
	}
}

func TestErrors(t *testing.T) {
	gw, dep := gateway(t)
	c := client(gw)
	simFaults(t, dep, `{"faults":[{"type":"status","status":429,"retry_after":"2","count":2}]}`)
	_, err := c.Chat.Completions.New(context.Background(), params("x"))
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 429 || apiErr.Code != "rate_limit_exceeded" {
		t.Fatalf("rate limit: %v", err)
	}
	if apiErr.Response.Header.Get("Retry-After") != "2" || apiErr.Response.Header.Get("X-Llmux-Provider") != "p0" {
		t.Fatalf("headers %v", apiErr.Response.Header)
	}
	s := c.Chat.Completions.NewStreaming(context.Background(), params("x"))
	for s.Next() {
	}
	if !errors.As(s.Err(), &apiErr) || apiErr.StatusCode != 429 {
		t.Fatalf("stream: %v", s.Err())
	}
	p := params("x")
	p.Model = "nope"
	if _, err = c.Chat.Completions.New(context.Background(), p); !errors.As(err, &apiErr) || apiErr.StatusCode != 404 {
		t.Fatalf("unknown model: %v", err)
	}
	page, err := c.Models.List(context.Background())
	if err != nil || len(page.Data) != 1 || page.Data[0].ID != "smart" {
		t.Fatalf("models: %v %+v", err, page)
	}
}

func TestStreamErrorAfterFirstChunk(t *testing.T) {
	gw, dep := gateway(t)
	simFaults(t, dep, `{"faults":[{"type":"stream_drop"}]}`)
	c := client(gw)
	s := c.Chat.Completions.NewStreaming(context.Background(), params("one two three"))
	n := 0
	for s.Next() {
		n++
	}
	if n != 2 || s.Err() == nil {
		t.Fatalf("%d chunks, err %v", n, s.Err())
	}
}
