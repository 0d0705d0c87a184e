package llmux_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	llmux "github.com/llmux/llmux/bindings/go"
)

// wantClass checks that err is an *llmux.Error of class want, matched by
// errors.Is against want's sentinel and by no other sentinel.
func wantClass(t *testing.T, err error, want error) *llmux.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %v", want)
	}
	e := asError(t, err)
	if !errors.Is(err, want) {
		t.Fatalf("error %v (class %d) does not match %v", err, e.Code, want)
	}
	for _, other := range allSentinels {
		if other != want && errors.Is(err, other) {
			t.Errorf("error %v also matches %v", err, other)
		}
	}
	var code llmux.Status
	if !errors.As(err, &code) || error(code) != want {
		t.Errorf("errors.As(err, *Status) = %v, want %v", code, want)
	}
	if e.Message == "" || !strings.Contains(err.Error(), e.Message) {
		t.Errorf("Error() = %q does not carry the message %q", err.Error(), e.Message)
	}
	return e
}

var allSentinels = []error{
	llmux.ErrInvalidArgument, llmux.ErrNoMemory, llmux.ErrConfig, llmux.ErrIO, llmux.ErrBadRequest,
	llmux.ErrUnknownModel, llmux.ErrAuth, llmux.ErrPermission, llmux.ErrNotFound, llmux.ErrRateLimit,
	llmux.ErrContextWindow, llmux.ErrContentFilter, llmux.ErrProvider, llmux.ErrConnect,
	llmux.ErrTimeout, llmux.ErrBadResponse, llmux.ErrBudget, llmux.ErrUnsupported,
	llmux.ErrCancelled, llmux.ErrInternal,
}

func TestStatusNames(t *testing.T) {
	if s := llmux.StatusRateLimit.String(); s == "" || s == "unknown status" {
		t.Errorf("StatusRateLimit.String() = %q", s)
	}
	if llmux.ErrTimeout.Error() != "llmux: "+llmux.StatusTimeout.String() {
		t.Errorf("ErrTimeout.Error() = %q", llmux.ErrTimeout.Error())
	}
	if llmux.Status(-999).String() != "unknown status" {
		t.Errorf("Status(-999) = %q", llmux.Status(-999).String())
	}
}

func TestErrorBadRequestJSON(t *testing.T) {
	t.Parallel()
	dep := deployment(t, "a")
	gw := openChain(t, dep)

	_, err := gw.ChatJSON(context.Background(), []byte(`{"model":"smart","messages":`))

	e := wantClass(t, err, llmux.ErrBadRequest)
	if e.HTTPStatus != 400 {
		t.Errorf("HTTPStatus = %d, want 400", e.HTTPStatus)
	}
	var body struct {
		Error struct {
			Message string `json:"message"`
			Type    string `json:"type"`
		} `json:"error"`
	}
	if err := json.Unmarshal(e.Body, &body); err != nil || body.Error.Message == "" {
		t.Errorf("Body = %s (%v), want an OpenAI error object", e.Body, err)
	}
	if e.Type != body.Error.Type || e.Type == "" {
		t.Errorf("Type = %q, body type %q", e.Type, body.Error.Type)
	}
	if simGet(t, dep).Requests != 0 {
		t.Errorf("an invalid request reached the provider")
	}
}

func TestErrorProviderBadRequestStops(t *testing.T) {
	t.Parallel()
	a, b := deployment(t, "a"), deployment(t, "b")
	simPut(t, a, `{"faults":[{"type":"status","status":400,"count":-1}]}`)
	gw := openChain(t, a, b)

	_, err := gw.Chat(context.Background(), ask("bad"))

	e := wantClass(t, err, llmux.ErrBadRequest)
	if e.HTTPStatus != 400 || len(e.Meta.Trace.Attempts) != 1 || e.Meta.Provider != "p0" {
		t.Errorf("HTTPStatus %d, attempts %+v, provider %q", e.HTTPStatus, e.Meta.Trace.Attempts, e.Meta.Provider)
	}
	if simGet(t, b).Requests != 0 {
		t.Errorf("a 400 must not fall back")
	}
}

func TestErrorUnknownModel(t *testing.T) {
	t.Parallel()
	gw := openChain(t, deployment(t, "a"))
	req := ask("hi")
	req.Model = "no-such-alias"

	_, err := gw.Chat(context.Background(), req)

	e := wantClass(t, err, llmux.ErrUnknownModel)
	if e.HTTPStatus != 404 || !strings.Contains(e.Message, "no-such-alias") {
		t.Errorf("HTTPStatus %d, message %q", e.HTTPStatus, e.Message)
	}
}

func TestErrorMissingKeyEnv(t *testing.T) {
	t.Parallel()
	a := deployment(t, "a")
	c := chainConfig(a)
	p := c.Providers["p0"]
	p.APIKeyEnv = unsetKeyEnv
	c.Providers["p0"] = p
	gw := open(t, c)

	_, err := gw.Chat(context.Background(), ask("hi"))

	e := wantClass(t, err, llmux.ErrAuth)
	if !strings.Contains(e.Message, unsetKeyEnv) {
		t.Errorf("message %q should name the variable %s", e.Message, unsetKeyEnv)
	}
	if at := e.Meta.Trace.Attempts; len(at) != 1 || at[0].Status != llmux.StatusAuth {
		t.Errorf("attempts = %+v", at)
	}
	if simGet(t, a).Requests != 0 {
		t.Errorf("a provider without its key was called")
	}
}

func TestErrorMissingKeyFallsBack(t *testing.T) {
	t.Parallel()
	a, b := deployment(t, "a"), deployment(t, "b")
	c := chainConfig(a, b)
	p := c.Providers["p0"]
	p.APIKeyEnv = unsetKeyEnv
	c.Providers["p0"] = p
	gw := open(t, c)

	resp := mustChat(t, gw, ask("hi"), llmux.WithTrace())

	if resp.Meta.Provider != "p1" || len(resp.Meta.Trace.Attempts) != 2 ||
		resp.Meta.Trace.Attempts[0].Status != llmux.StatusAuth {
		t.Errorf("provider %q, attempts %+v", resp.Meta.Provider, resp.Meta.Trace.Attempts)
	}
}

func TestErrorAuthRejected(t *testing.T) {
	t.Parallel()
	good, bad := deployment(t, "good"), deployment(t, "bad")
	simPut(t, good, `{"require_key":"`+testKey+`"}`)
	simPut(t, bad, `{"require_key":"`+testKey+`"}`)
	c := &testConfig{
		Providers: map[string]provider{
			"good": {Type: "openai", BaseURL: simURL + "/" + good + "/v1", APIKeyEnv: keyEnv},
			"bad":  {Type: "openai", BaseURL: simURL + "/" + bad + "/v1", APIKeyEnv: wrongKeyEnv},
		},
		Models: map[string]map[string][]target{
			"good": {"targets": {{Provider: "good", Model: "m"}}},
			"bad":  {"targets": {{Provider: "bad", Model: "m"}}},
		},
	}
	gw := open(t, c)

	req := ask("key?")
	req.Model = "good"
	mustChat(t, gw, req)
	if got := simGet(t, good).LastRequest.Authorization; got != "Bearer "+testKey {
		t.Errorf("Authorization = %q", got)
	}
	req.Model = "bad"
	_, err := gw.Chat(context.Background(), req)
	e := wantClass(t, err, llmux.ErrAuth)
	if e.HTTPStatus != 401 {
		t.Errorf("HTTPStatus = %d, want 401", e.HTTPStatus)
	}
	if strings.Contains(err.Error(), "sk-wrong") || strings.Contains(string(e.Body), "sk-wrong") {
		t.Errorf("the error leaks the API key: %v", err)
	}
}

func TestErrorRateLimitEverywhere(t *testing.T) {
	t.Parallel()
	a, b := deployment(t, "a"), deployment(t, "b")
	simPut(t, a, `{"faults":[{"type":"status","status":429,"retry_after":"7","count":-1}]}`)
	simPut(t, b, `{"faults":[{"type":"status","status":429,"count":-1}]}`)
	gw := openChain(t, a, b)

	_, err := gw.Chat(context.Background(), ask("throttle me"))

	e := wantClass(t, err, llmux.ErrRateLimit)
	if e.HTTPStatus != 429 || e.Type == "" {
		t.Errorf("HTTPStatus %d, Type %q", e.HTTPStatus, e.Type)
	}
	if n := strings.Count(err.Error(), "429"); n != 1 {
		t.Errorf("Error() = %q names the status %d times, want once", err.Error(), n)
	}
	at := e.Meta.Trace.Attempts
	if len(at) != 2 || at[0].Status != llmux.StatusRateLimit || at[1].Status != llmux.StatusRateLimit {
		t.Fatalf("attempts = %+v", at)
	}
	if at[0].RetryAfterMS == nil || *at[0].RetryAfterMS != 7000 {
		t.Errorf("retry_after_ms = %v, want 7000 from Retry-After: 7", at[0].RetryAfterMS)
	}
	if e.Meta.Provider != "p1" || e.Meta.Trace.Status != "rate_limit" {
		t.Errorf("last provider %q, trace status %q", e.Meta.Provider, e.Meta.Trace.Status)
	}
}

func TestErrorProviderStatuses(t *testing.T) {
	t.Parallel()
	cases := []struct {
		status int
		body   string
		want   error
	}{
		{500, "", llmux.ErrProvider},
		{503, "", llmux.ErrProvider},
		{404, "", llmux.ErrNotFound},
		{400, `{"error":{"message":"This model's maximum context length is 8192 tokens","type":"invalid_request_error","code":"context_length_exceeded"}}`, llmux.ErrContextWindow},
		{400, `{"error":{"message":"flagged","type":"invalid_request_error","code":"content_filter"}}`, llmux.ErrContentFilter},
	}
	for _, tc := range cases {
		t.Run(strings.TrimPrefix(tc.want.Error(), "llmux: "), func(t *testing.T) {
			t.Parallel()
			dep := deployment(t, "a")
			fault := map[string]any{"type": "status", "status": tc.status, "count": -1}
			if tc.body != "" {
				fault["body"] = json.RawMessage(tc.body)
			}
			settings, _ := json.Marshal(map[string]any{"faults": []any{fault}})
			simPut(t, dep, string(settings))
			gw := openChain(t, dep)

			_, err := gw.Chat(context.Background(), ask("x"))

			e := wantClass(t, err, tc.want)
			if e.HTTPStatus != tc.status {
				t.Errorf("HTTPStatus = %d, want %d", e.HTTPStatus, tc.status)
			}
		})
	}
}

func TestErrorForbidden(t *testing.T) {
	t.Parallel()
	a, b := deployment(t, "a"), deployment(t, "b")
	simPut(t, a, `{"faults":[{"type":"status","status":403,"count":-1}]}`)
	simPut(t, b, `{"faults":[{"type":"status","status":403,"count":-1}]}`)
	gw := openChain(t, a, b)

	_, err := gw.Chat(context.Background(), ask("x"))

	// docs/trace.md: a provider's 403 is LLMUX_ERR_PERMISSION and falls back.
	// (llmux.h's comment on LLMUX_ERR_AUTH still says "(401/403)".)
	e := wantClass(t, err, llmux.ErrPermission)
	if e.HTTPStatus != 403 || len(e.Meta.Trace.Attempts) != 2 {
		t.Errorf("HTTPStatus %d, attempts %+v", e.HTTPStatus, e.Meta.Trace.Attempts)
	}
}

func TestErrorTimeout(t *testing.T) {
	t.Parallel()
	dep := deployment(t, "a")
	simPut(t, dep, `{"faults":[{"type":"latency","ms":3000,"count":-1}]}`)
	gw := openChain(t, dep)

	start := time.Now()
	_, err := gw.Chat(context.Background(), ask("slow"), llmux.WithTimeout(200*time.Millisecond))
	elapsed := time.Since(start)

	e := wantClass(t, err, llmux.ErrTimeout)
	if elapsed > 2*time.Second {
		t.Errorf("took %v with a 200ms timeout", elapsed)
	}
	if len(e.Meta.Trace.Attempts) == 0 || e.Meta.Trace.Attempts[0].Status != llmux.StatusTimeout {
		t.Errorf("attempts = %+v", e.Meta.Trace.Attempts)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WithTimeout alone should not look like a context deadline")
	}
}

func TestErrorContextDeadline(t *testing.T) {
	t.Parallel()
	dep := deployment(t, "a")
	simPut(t, dep, `{"faults":[{"type":"latency","ms":3000,"count":-1}]}`)
	gw := openChain(t, dep)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()

	start := time.Now()
	_, err := gw.Chat(ctx, ask("slow"))

	wantClass(t, err, llmux.ErrTimeout)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("%v should match context.DeadlineExceeded", err)
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("took %v with a 200ms deadline", elapsed)
	}
}

func TestErrorContextCancel(t *testing.T) {
	t.Parallel()
	dep := deployment(t, "a")
	simPut(t, dep, `{"faults":[{"type":"latency","ms":2000,"count":1}]}`)
	gw := openChain(t, dep)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)

	start := time.Now()
	_, err := gw.Chat(ctx, ask("slow"))

	wantClass(t, err, llmux.ErrCancelled)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("%v should match context.Canceled", err)
	}
	if elapsed := time.Since(start); elapsed > 1500*time.Millisecond {
		t.Errorf("Chat returned %v after its context was cancelled at 100ms", elapsed)
	}
	// An already cancelled context does not call at all.
	if _, err := gw.Chat(ctx, ask("again")); !errors.Is(err, context.Canceled) {
		t.Errorf("with a cancelled context: %v", err)
	}
	// Close waits for the abandoned C call, which still completes.
	gw.Close()
	if n := simGet(t, dep).Requests; n != 1 {
		t.Errorf("simulator saw %d requests, want 1", n)
	}
}

func TestErrorMalformedResponse(t *testing.T) {
	t.Parallel()
	dep := deployment(t, "a")
	simPut(t, dep, `{"faults":[{"type":"malformed","count":-1}]}`)
	gw := openChain(t, dep)

	_, err := gw.Chat(context.Background(), ask("x"))

	e := wantClass(t, err, llmux.ErrBadResponse)
	if e.HTTPStatus != 200 {
		t.Errorf("HTTPStatus = %d, want 200 (the provider said OK, then sent garbage)", e.HTTPStatus)
	}
}

func TestErrorConnect(t *testing.T) {
	t.Parallel()
	dep := deployment(t, "a")
	simPut(t, dep, `{"faults":[{"type":"drop","count":-1}]}`)
	c := chainConfig(dep, "closed")
	c.Providers["p1"] = provider{Type: "openai", BaseURL: closedPortURL(t)}
	gw := open(t, c)

	_, err := gw.Chat(context.Background(), ask("x"))

	e := wantClass(t, err, llmux.ErrConnect)
	if at := e.Meta.Trace.Attempts; len(at) != 2 || at[0].Status != llmux.StatusConnect {
		t.Errorf("attempts = %+v", at)
	}
}

func TestErrorConfig(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, config, wantPath string
	}{
		{"unknown provider", `{"providers":{"a":{"type":"openai","base_url":"http://127.0.0.1:1/v1"}},
			"models":{"smart":{"targets":[{"provider":"a","model":"x"},{"provider":"anthropc","model":"y"}]}}}`,
			"models.smart.targets[1].provider"},
		{"unknown field", `{"providers":{"a":{"type":"openai","base_url":"http://127.0.0.1:1/v1","colour":1}},
			"models":{"smart":{"targets":[{"provider":"a","model":"x"}]}}}`, "providers.a.colour"},
		{"bad type", `{"providers":{"a":{"type":"openai","base_url":"http://127.0.0.1:1/v1"}},
			"models":{"smart":{"targets":[{"provider":"a","model":"x"}]}},"defaults":{"timeout_ms":"soon"}}`,
			"defaults.timeout_ms"},
		{"not json", `{"providers":`, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			gw, err := llmux.Open([]byte(tc.config))
			if gw != nil {
				gw.Close()
				t.Fatal("Open succeeded")
			}
			e := wantClass(t, err, llmux.ErrConfig)
			if !strings.Contains(e.Message, tc.wantPath) {
				t.Errorf("message %q does not name %q", e.Message, tc.wantPath)
			}
		})
	}
}

func TestErrorOpenFileMissing(t *testing.T) {
	t.Parallel()
	_, err := llmux.OpenFile(filepath.Join(t.TempDir(), "missing.json"))
	wantClass(t, err, llmux.ErrIO)

	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`{"providers":{}}`), 0o600)
	_, err = llmux.OpenFile(bad)
	wantClass(t, err, llmux.ErrConfig)
}

func TestErrorInvalidArguments(t *testing.T) {
	t.Parallel()
	gw := openChain(t, deployment(t, "a"))
	if _, err := gw.Chat(context.Background(), nil); !errors.Is(err, llmux.ErrInvalidArgument) {
		t.Errorf("nil request: %v", err)
	}
	if _, err := gw.Chat(context.Background(), ask("x"), llmux.WithTask("a\x00b")); !errors.Is(err, llmux.ErrInvalidArgument) {
		t.Errorf("NUL in an option: %v", err)
	}
	if _, err := gw.ChatJSON(context.Background(), []byte("{\x00}")); !errors.Is(err, llmux.ErrBadRequest) {
		t.Errorf("NUL in the request: %v", err)
	}
	if _, err := gw.Spend("colour"); !errors.Is(err, llmux.ErrInvalidArgument) {
		t.Errorf("Spend(colour): %v", err)
	}
}

// Error() says the class, the message and the HTTP status once each.
func TestErrorStringSaysStatusOnce(t *testing.T) {
	t.Parallel()
	class := "llmux: " + llmux.StatusRateLimit.String()
	for _, tc := range []struct {
		msg    string
		status int
		want   string
	}{
		{`provider "a": HTTP 429 (x): slow down`, 429, class + `: provider "a": HTTP 429 (x): slow down`},
		{"provider said HTTP 429", 429, class + ": provider said HTTP 429"},
		{"slow down", 429, class + ": slow down (HTTP 429)"},
		{"HTTP 4290 is another status", 429, class + ": HTTP 4290 is another status (HTTP 429)"},
		{"HTTP 4290, then HTTP 429", 429, class + ": HTTP 4290, then HTTP 429"},
		{"", 429, class + " (HTTP 429)"},
		{"no status", 0, class + ": no status"},
	} {
		e := &llmux.Error{Code: llmux.StatusRateLimit, Message: tc.msg, HTTPStatus: tc.status}
		if got := e.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
}
