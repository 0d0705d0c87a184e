package llmux_test

import (
	"strings"
	"testing"

	llmux "github.com/llmux/llmux/bindings/go"
)

func TestRouteDryRunAndHealth(t *testing.T) {
	t.Parallel()
	a, b := deployment(t, "a"), deployment(t, "b")
	c := chainConfig(a, b)
	c.Routing = map[string]any{"cooldown": map[string]any{"after_failures": 1, "ms": 60000}}
	gw := open(t, c)
	req := []byte(`{"model":"smart","messages":[{"role":"user","content":"hi"}]}`)
	plan, err := gw.Route(req, llmux.RouteOptions{Task: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if plan.Alias == nil || *plan.Alias != "smart" || len(plan.Candidates) != 2 ||
		plan.Candidates[0].Provider != "p0" || plan.Strategy != "ordered" {
		t.Fatalf("plan = %+v", plan)
	}
	if simGet(t, a).Requests != 0 {
		t.Fatalf("a dry run called a provider")
	}
	simPut(t, a, `{"faults":[{"type":"status","status":503,"count":1}]}`)
	mustChat(t, gw, ask("x"))
	h, err := gw.Health()
	if err != nil || len(h) != 2 || h[0].State != "cooldown" || h[1].State != "ok" {
		t.Fatalf("health = %+v, %v", h, err)
	}
	plan, err = gw.Route(req, llmux.RouteOptions{})
	if err != nil || len(plan.Skipped) != 1 || !strings.HasPrefix(plan.Skipped[0].Reason, "cooling down for ") {
		t.Fatalf("plan = %+v, %v", plan, err)
	}
	if _, err := gw.Route([]byte(`{"model":"nope","messages":[{"role":"user","content":"x"}]}`), llmux.RouteOptions{}); err == nil {
		t.Fatal("an unknown model routed")
	}
}
