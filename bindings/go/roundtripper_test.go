package llmux_test

// RoundTripper seen from net/http: what any OpenAI client that takes an
// *http.Client gets. openai-go itself is tested in sdktest/ (its own module,
// so that the library's go.mod stays free of the SDK).

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	llmux "github.com/llmux/llmux/bindings/go"
)

func rtClient(gw *llmux.Gateway, opts ...llmux.CallOption) *http.Client {
	return &http.Client{Transport: llmux.RoundTripper(gw, opts...)}
}

func post(t *testing.T, c *http.Client, body string, headers map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://llmux/v1/chat/completions", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer gk-go")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

const helloBody = `{"model":"smart","messages":[{"role":"user","content":"hello there"}]}`

func TestRoundTripperChat(t *testing.T) {
	t.Parallel()
	a := deployment(t, "a")
	gw := openChain(t, a)
	c := rtClient(gw)
	resp := post(t, c, helloBody, map[string]string{"X-Llmux-Task": "classify", "X-Llmux-Workflow": "bot"})
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if p, m := resp.Header.Get("X-Llmux-Provider"), resp.Header.Get("X-Llmux-Model"); p != "p0" || m != "m-0" {
		t.Fatalf("provider %q model %q", p, m)
	}
	if resp.Header.Get("X-Llmux-Cost-Usd") != "" {
		t.Fatalf("a cost header without prices: %q", resp.Header.Get("X-Llmux-Cost-Usd"))
	}
	var cc struct {
		Choices []struct {
			Message struct{ Content string } `json:"message"`
		} `json:"choices"`
	}
	if err := json.Unmarshal(body, &cc); err != nil || cc.Choices[0].Message.Content != "["+a+"] hello there" {
		t.Fatalf("body %s (%v)", body, err)
	}
	meta, ok := gw.CallMeta(resp.Header.Get("X-Llmux-Call-Id"))
	if !ok || meta.Trace.Task != "classify" || meta.Trace.Workflow != "bot" || len(meta.Trace.Attempts) != 1 {
		t.Fatalf("CallMeta: %v %+v", ok, meta.Trace)
	}
	if _, ok := gw.CallMeta("nope"); ok {
		t.Fatal("CallMeta of an unknown id")
	}
	// The bearer token is the gateway key: charged like WithKey("gk-go").
	mustChat(t, gw, ask("x"), llmux.WithKey("gk-go"))
	rep, err := gw.Spend("key")
	if err != nil || len(rep.Rows) != 1 || rep.Rows[0].Calls != 2 {
		t.Fatalf("spend by key: %+v %v", rep, err)
	}
}

func TestRoundTripperStream(t *testing.T) {
	t.Parallel()
	a := deployment(t, "a")
	gw := openChain(t, a)
	resp := post(t, rtClient(gw), `{"model":"smart","stream":true,"messages":[{"role":"user","content":"one two"}]}`, nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var text strings.Builder
	events := 0
	sc := bufio.NewScanner(resp.Body)
	last := ""
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			t.Fatalf("not an SSE data line: %q", line)
		}
		last = data
		if data == "[DONE]" {
			continue
		}
		events++
		var ch struct {
			Choices []struct {
				Delta struct{ Content string } `json:"delta"`
			} `json:"choices"`
		}
		if err := json.Unmarshal([]byte(data), &ch); err != nil {
			t.Fatalf("chunk %q: %v", data, err)
		}
		if len(ch.Choices) > 0 {
			text.WriteString(ch.Choices[0].Delta.Content)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if last != "[DONE]" || text.String() != "["+a+"] one two" {
		t.Fatalf("last %q text %q", last, text.String())
	}
	meta, ok := gw.CallMeta(resp.Header.Get("X-Llmux-Call-Id"))
	if !ok || !meta.Trace.Stream || meta.Trace.Chunks != events {
		t.Fatalf("CallMeta: %v %+v (events %d)", ok, meta.Trace, events)
	}
}

func TestRoundTripperErrors(t *testing.T) {
	t.Parallel()
	a := deployment(t, "a")
	gw := openChain(t, a)
	c := rtClient(gw)
	cases := []struct {
		fault      string
		status     int
		code       string
		retryAfter string
	}{
		{`{"type":"status","status":429,"retry_after":"3","count":2}`, 429, "rate_limit_exceeded", "3"},
		{`{"type":"status","status":401,"count":2}`, 401, "invalid_api_key", ""},
		{`{"type":"status","status":503,"count":2}`, 503, "", ""},
		{`{"type":"malformed","count":2}`, 502, "bad_response", ""},
	}
	for _, tc := range cases {
		for _, body := range []string{helloBody, strings.Replace(helloBody, `{"model"`, `{"stream":true,"model"`, 1)} {
			simPut(t, a, `{"faults":[`+tc.fault+`]}`)
			resp := post(t, c, body, nil)
			raw, _ := io.ReadAll(resp.Body)
			var e struct {
				Error struct {
					Code      any    `json:"code"`
					LlmuxCode string `json:"llmux_code"`
				} `json:"error"`
			}
			if resp.StatusCode != tc.status || json.Unmarshal(raw, &e) != nil {
				t.Fatalf("%s: status %d body %s", tc.fault, resp.StatusCode, raw)
			}
			if got, _ := e.Error.Code.(string); tc.code != "" && got != tc.code {
				t.Fatalf("%s: code %v in %s", tc.fault, e.Error.Code, raw)
			}
			if got := resp.Header.Get("Retry-After"); got != tc.retryAfter {
				t.Fatalf("%s: Retry-After %q", tc.fault, got)
			}
			if _, ok := gw.CallMeta(resp.Header.Get("X-Llmux-Call-Id")); !ok {
				t.Fatalf("%s: no CallMeta", tc.fault)
			}
		}
	}
	// Unknown alias, other paths and methods.
	resp := post(t, c, `{"model":"nope","messages":[{"role":"user","content":"x"}]}`, nil)
	if resp.StatusCode != 404 {
		t.Fatalf("unknown model: %d", resp.StatusCode)
	}
	for _, p := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/v1/chat/completions", 405}, {"POST", "/v1/embeddings", 404},
		{"GET", "/v1/models", 200}, {"GET", "/v1/models/smart", 200}, {"GET", "/v1/models/x", 404},
	} {
		req, _ := http.NewRequest(p.method, "http://llmux"+p.path, nil)
		r, err := c.Do(req)
		if err != nil || r.StatusCode != p.status {
			t.Fatalf("%s %s: %v %v", p.method, p.path, r, err)
		}
		r.Body.Close()
	}
	// A closed gateway answers 503, streamed or not.
	closed := openChain(t, a)
	closed.Close()
	for _, body := range []string{helloBody, `{"stream":true,"model":"smart","messages":[{"role":"user","content":"x"}]}`} {
		if r := post(t, rtClient(closed), body, nil); r.StatusCode != 503 {
			t.Fatalf("closed gateway: %d", r.StatusCode)
		}
	}
	// A provider nobody answers: RoundTrip fails as a network call would.
	cfg := chainConfig(a)
	cfg.Providers["p0"] = provider{Type: "openai", BaseURL: closedPortURL(t)}
	_, err := rtClient(open(t, cfg)).Post("http://llmux/v1/chat/completions", "application/json",
		strings.NewReader(helloBody))
	if !errors.Is(err, llmux.ErrConnect) {
		t.Fatalf("closed port: %v", err)
	}
}

func TestRoundTripperStreamCancel(t *testing.T) {
	t.Parallel()
	a := deployment(t, "a")
	gw := openChain(t, a)
	simPut(t, a, `{"faults":[{"type":"slow_stream","ms":200}]}`)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", "http://llmux/v1/chat/completions",
		strings.NewReader(`{"model":"smart","stream":true,"messages":[{"role":"user","content":"a b c d"}]}`))
	resp, err := rtClient(gw).Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("%v %v", resp, err)
	}
	buf := make([]byte, 8)
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "data: {\"" {
		t.Fatalf("first bytes %q: %v", buf, err)
	}
	cancel()
	_, err = io.ReadAll(resp.Body)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("read after cancel: %v", err)
	}
	resp.Body.Close()
	meta, ok := gw.CallMeta(resp.Header.Get("X-Llmux-Call-Id"))
	if !ok || meta.Trace.Status != "cancelled" {
		t.Fatalf("CallMeta: %v %+v", ok, meta.Trace)
	}
}

func TestRoundTripperStreamErrorAfterFirstChunk(t *testing.T) {
	t.Parallel()
	a := deployment(t, "a")
	gw := openChain(t, a)
	simPut(t, a, `{"faults":[{"type":"stream_drop"}]}`)
	resp := post(t, rtClient(gw), `{"model":"smart","stream":true,"messages":[{"role":"user","content":"one two three"}]}`, nil)
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %v", resp.StatusCode, err)
	}
	events := strings.Split(strings.TrimSuffix(string(body), "\n\n"), "\n\n")
	n := len(events)
	if n != 4 || events[n-1] != "data: [DONE]" || !strings.HasPrefix(events[n-2], `data: {"error":`) {
		t.Fatalf("events %q", events)
	}
	meta, ok := gw.CallMeta(resp.Header.Get("X-Llmux-Call-Id"))
	if !ok || meta.Trace.Status == "ok" {
		t.Fatalf("CallMeta: %v %+v", ok, meta.Trace)
	}
}
