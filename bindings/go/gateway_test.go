package llmux_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	llmux "github.com/llmux/llmux/bindings/go"
)

func TestSpendByTask(t *testing.T) {
	t.Parallel()
	a, b := deployment(t, "a"), deployment(t, "b")
	gw := openChain(t, a, b)

	for i := 0; i < 3; i++ {
		mustChat(t, gw, ask("one two three four"), llmux.WithTask("draft"), llmux.WithWorkflow("wf"))
	}
	for i := 0; i < 2; i++ {
		mustChat(t, gw, ask("five six"), llmux.WithTask("review"), llmux.WithWorkflow("wf"))
	}
	simPut(t, a, `{"faults":[{"type":"status","status":500,"count":-1}]}`)
	simPut(t, b, `{"faults":[{"type":"status","status":500,"count":-1}]}`)
	if _, err := gw.Chat(context.Background(), ask("fails"), llmux.WithTask("review"), llmux.WithWorkflow("wf")); err == nil {
		t.Fatal("the call should have failed")
	}

	rep, err := gw.Spend(llmux.GroupByTask)
	if err != nil {
		t.Fatal(err)
	}
	if rep.GroupBy != "task" || len(rep.Rows) != 2 {
		t.Fatalf("report = %s", rep.Raw)
	}
	draft, review := rep.Row("draft"), rep.Row("review")
	if draft == nil || review == nil {
		t.Fatalf("rows = %+v", rep.Rows)
	}
	// "one two three four": 18 bytes -> 5 prompt tokens; answer "[dep] one two three four" -> 5 words.
	if draft.Calls != 3 || draft.Errors != 0 || draft.PromptTokens != 15 || draft.CompletionTokens != 15 ||
		draft.UnpricedCalls != 3 {
		t.Errorf("draft = %+v", *draft)
	}
	if review.Calls != 3 || review.Errors != 1 || review.PromptTokens != 4 || review.CompletionTokens != 6 {
		t.Errorf("review = %+v", *review)
	}
	if rep.Total.Calls != 6 || rep.Total.Errors != 1 || rep.Total.CostUSD != 0 {
		t.Errorf("total = %+v", rep.Total)
	}

	for _, g := range []string{llmux.GroupByTotal, llmux.GroupByKey, llmux.GroupByWorkflow,
		llmux.GroupByModel, llmux.GroupByProvider} {
		rep, err := gw.Spend(g)
		if err != nil {
			t.Fatalf("Spend(%q): %v", g, err)
		}
		if rep.Total.Calls != 6 {
			t.Errorf("Spend(%q) total = %+v", g, rep.Total)
		}
		if g == llmux.GroupByWorkflow && (rep.Row("wf") == nil || rep.Row("wf").Calls != 6) {
			t.Errorf("by workflow: %s", rep.Raw)
		}
		// A call no provider answered counts under "(none)".
		if g == llmux.GroupByProvider && (rep.Row("p0") == nil || rep.Row("p0").Calls != 5 ||
			rep.Row("(none)") == nil || rep.Row("(none)").Errors != 1) {
			t.Errorf("by provider: %s", rep.Raw)
		}
		if g == llmux.GroupByModel && (rep.Row("m-0") == nil || rep.Row("m-0").Calls != 5 ||
			rep.Row("(none)") == nil || rep.Row("(none)").Errors != 1) {
			t.Errorf("by model: %s", rep.Raw)
		}
		if g == llmux.GroupByTotal && len(rep.Rows) != 0 {
			t.Errorf("total: %s", rep.Raw)
		}
	}
}

func TestSpendByKey(t *testing.T) {
	t.Parallel()
	gw := openChain(t, deployment(t, "a"))
	mustChat(t, gw, ask("x"), llmux.WithKey("team-a"))
	mustChat(t, gw, ask("x"), llmux.WithKey("team-a"))
	mustChat(t, gw, ask("x"), llmux.WithKey("team-b"))
	rep, err := gw.Spend(llmux.GroupByKey)
	if err != nil {
		t.Fatal(err)
	}
	// The ledger never holds a key itself, only a fingerprint:
	// "key-" + the first 8 bytes of its SHA-256 in hex.
	a, b := rep.Row(fingerprint("team-a")), rep.Row(fingerprint("team-b"))
	if a == nil || a.Calls != 2 || b == nil || b.Calls != 1 || strings.Contains(string(rep.Raw), "team-") {
		t.Errorf("by key: %s", rep.Raw)
	}
}

func fingerprint(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "key-" + hex.EncodeToString(sum[:8])
}

// TestConcurrentCalls runs 16 goroutines x 50 calls on one Gateway and checks
// that every answer is the one to its own question.
func TestConcurrentCalls(t *testing.T) {
	t.Parallel()
	a, b := deployment(t, "a"), deployment(t, "b")
	simPut(t, a, `{"faults":[{"type":"status","status":503,"count":100}]}`)
	gw := openChain(t, a, b)
	const goroutines, calls = 16, 50

	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < calls; i++ {
				q := fmt.Sprintf("goroutine %d call %d", g, i)
				var (
					resp *llmux.ChatResponse
					err  error
				)
				if i%10 == 9 {
					var s *llmux.Stream
					if s, err = gw.ChatStream(context.Background(), ask(q)); err == nil {
						resp, err = s.Result()
					}
				} else {
					resp, err = gw.Chat(context.Background(), ask(q), llmux.WithTask(fmt.Sprint("t", g%4)))
				}
				if err != nil {
					errs <- fmt.Errorf("%s: %w", q, err)
					return
				}
				if !strings.HasSuffix(resp.Text(), "] "+q) {
					errs <- fmt.Errorf("%s: got the answer %q", q, resp.Text())
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	rep, err := gw.Spend("")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Total.Calls != goroutines*calls || rep.Total.Errors != 0 {
		t.Errorf("total = %+v, want %d calls", rep.Total, goroutines*calls)
	}
	sa, sb := simGet(t, a), simGet(t, b)
	if answers := sa.Requests - sa.FaultsApplied + sb.Requests; answers != goroutines*calls || sa.FaultsApplied == 0 {
		t.Errorf("a answered %d (%d faults), b %d; want %d answers", sa.Requests-sa.FaultsApplied,
			sa.FaultsApplied, sb.Requests, goroutines*calls)
	}
}

func TestCloseIdempotentAndUseAfterClose(t *testing.T) {
	t.Parallel()
	gw, err := llmux.Open(chainConfig(deployment(t, "a")).JSON(t))
	if err != nil {
		t.Fatal(err)
	}
	mustChat(t, gw, ask("before"))
	if err := gw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gw.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := gw.Chat(context.Background(), ask("after")); !errors.Is(err, llmux.ErrClosed) {
		t.Errorf("Chat after Close: %v", err)
	}
	if _, err := gw.ChatStream(context.Background(), ask("after")); !errors.Is(err, llmux.ErrClosed) {
		t.Errorf("ChatStream after Close: %v", err)
	}
	if _, err := gw.Spend(""); !errors.Is(err, llmux.ErrClosed) {
		t.Errorf("Spend after Close: %v", err)
	}
}

func TestCloseWaitsForCallsInFlight(t *testing.T) {
	t.Parallel()
	dep, slow := deployment(t, "a"), deployment(t, "slow")
	simPut(t, dep, `{"latency_ms":200}`)
	simPut(t, slow, `{"faults":[{"type":"slow_stream","ms":50,"count":-1}]}`)
	c := chainConfig(dep)
	c.Providers["slow"] = simProvider(slow)
	c.Models["slow"] = map[string][]target{"targets": {{Provider: "slow", Model: "s"}}}
	gw, err := llmux.Open(c.JSON(t))
	if err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	results := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := gw.Chat(context.Background(), ask("in flight"))
			results <- err
		}()
	}
	req := ask(strings.Repeat("word ", 100))
	req.Model = "slow"
	s, err := gw.ChatStream(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Next() {
		t.Fatalf("no first chunk: %v", s.Err())
	}
	time.Sleep(50 * time.Millisecond) // let the calls start

	start := time.Now()
	var closers sync.WaitGroup
	for i := 0; i < 3; i++ {
		closers.Add(1)
		go func() { defer closers.Done(); gw.Close() }()
	}
	closers.Wait()
	if time.Since(start) > 3*time.Second {
		t.Errorf("Close took %v", time.Since(start))
	}
	wg.Wait()
	close(results)
	for err := range results {
		// Each call either finished before Close or was refused by it.
		if err != nil && !errors.Is(err, llmux.ErrClosed) {
			t.Errorf("call in flight: %v", err)
		}
	}
	// Close stopped the stream.
	for s.Next() {
	}
	if !errors.Is(s.Err(), llmux.ErrClosed) {
		t.Errorf("stream Err() after Gateway.Close = %v, want ErrClosed", s.Err())
	}
	if _, err := s.Result(); !errors.Is(err, llmux.ErrCancelled) {
		t.Errorf("stream after Close: %v", err)
	}
}

func TestFinalizerClosesUnreachableGateway(t *testing.T) {
	// Not parallel: it counts on the GC. A Gateway dropped without Close
	// must not crash or leak a finalizer that touches freed memory.
	for i := 0; i < 5; i++ {
		gw, err := llmux.Open(chainConfig(deployment(t, "a")).JSON(t))
		if err != nil {
			t.Fatal(err)
		}
		mustChat(t, gw, ask("dropped"))
	}
	runtime.GC()
	runtime.GC()
	time.Sleep(10 * time.Millisecond)
}
