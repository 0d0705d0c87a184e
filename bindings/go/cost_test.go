package llmux_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	llmux "github.com/llmux/llmux/bindings/go"
)

// 1.2345678 and 3.0375 USD per million tokens, in femto-dollars per token.
const femtoIn, femtoOut = 1234567800, 3037500000

// nusd is a call's cost in nano-dollars: the exact femto-dollar sum, rounded half up.
func nusd(prompt, completion int64) int64 {
	return (prompt*femtoIn + completion*femtoOut + 500000) / 1000000
}

// openPriced opens chainConfig(dep) with a price for m-0 and an unpriced alias.
func openPriced(t *testing.T, dep string) *llmux.Gateway {
	t.Helper()
	c := chainConfig(dep)
	c.Models["unpriced"] = map[string][]target{"targets": {{Provider: "p0", Model: "other"}}}
	return openPricedWith(t, c, nil)
}

// openPricedWith opens c with a price for m-0 and the extra top-level members.
func openPricedWith(t *testing.T, c *testConfig, extra map[string]any) *llmux.Gateway {
	t.Helper()
	var cfg map[string]any
	if err := json.Unmarshal(c.JSON(t), &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["prices"] = map[string]any{"m-0": map[string]float64{"input_mtok": 1.2345678, "output_mtok": 3.0375}}
	for k, v := range extra {
		cfg[k] = v
	}
	raw, _ := json.Marshal(cfg)
	gw, err := llmux.Open(raw)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { gw.Close() })
	return gw
}

func TestCostOfEveryCall(t *testing.T) {
	t.Parallel()
	gw := openPriced(t, deployment(t, "a"))
	req := ask("stream me five words please")
	resp := mustChat(t, gw, req, llmux.WithTrace())
	want := nusd(resp.Meta.PromptTokens, resp.Meta.CompletionTokens)
	if resp.Meta.PromptTokens != 7 || want != 26867 {
		t.Fatalf("usage %d/%d, cost %d", resp.Meta.PromptTokens, resp.Meta.CompletionTokens, want)
	}
	if usd, known := resp.Meta.Cost(); !known || usd != float64(want)/1e9 {
		t.Errorf("Cost() = %v, %v; want %v", usd, known, float64(want)/1e9)
	}
	tr := resp.Meta.Trace
	if tr.CostNUSD != want || tr.CostEstimated || tr.Price == nil || tr.Price.Entry != "m-0" ||
		tr.Price.Source != "config" {
		t.Errorf("trace %s", tr.Raw)
	}

	// streamed costs exactly what unstreamed costs
	s, err := gw.ChatStream(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	for s.Next() {
	}
	sresp, err := s.Result()
	if err != nil {
		t.Fatal(err)
	}
	if sresp.Meta.CostUSD != resp.Meta.CostUSD {
		t.Errorf("streamed cost %v, unstreamed %v", sresp.Meta.CostUSD, resp.Meta.CostUSD)
	}

	// an unpriced model is unknown, not 0
	other := ask("hi")
	other.Model = "unpriced"
	oresp := mustChat(t, gw, other, llmux.WithTrace())
	if _, known := oresp.Meta.Cost(); known || oresp.Meta.Trace.CostUSD != nil || oresp.Meta.Trace.Price != nil {
		t.Errorf("unpriced: %+v, trace %s", oresp.Meta, oresp.Meta.Trace.Raw)
	}

	rep, err := gw.Spend(llmux.GroupByTotal)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Total.CostNUSD == nil || *rep.Total.CostNUSD != 2*want || rep.Total.PricedCalls != 2 ||
		rep.Total.UnpricedCalls != 1 || rep.Total.EstimatedCalls != 0 {
		t.Errorf("spend %s", rep.Raw)
	}
}

func TestStoppedStreamIsEstimated(t *testing.T) {
	t.Parallel()
	dep := deployment(t, "a")
	gw := openPriced(t, dep)
	simPut(t, dep, `{"faults":[{"type":"slow_stream","ms":50}]}`) // Close comes mid-stream
	s, err := gw.ChatStream(context.Background(), ask("alpha beta gamma delta epsilon zeta"))
	if err != nil {
		t.Fatal(err)
	}
	s.Next()
	s.Close()
	_, err = s.Result() // waits for the call to end
	var e *llmux.Error
	if !errors.As(err, &e) || e.Code != llmux.StatusCancelled {
		t.Fatalf("Result() error = %v, want ErrCancelled", err)
	}
	if usd, known := e.Meta.Cost(); !known || usd <= 0 || !e.Meta.Trace.CostEstimated {
		t.Errorf("cancelled stream: %+v, trace %s", e.Meta, e.Meta.Trace.Raw)
	}
	rep, err := gw.Spend(llmux.GroupByTotal)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Total.Calls != 1 || rep.Total.EstimatedCalls != 1 || rep.Total.CostNUSD == nil ||
		*rep.Total.CostNUSD <= 0 || rep.Total.PricedCalls != 1 {
		t.Errorf("spend %s", rep.Raw)
	}
}
