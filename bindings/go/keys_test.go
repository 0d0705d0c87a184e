package llmux_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	llmux "github.com/llmux/llmux/bindings/go"
)

// The plaintext gateway keys of these tests: none may appear in any output.
const (
	goKeySupport = "sk-go-support-0123456789"
	goKeyRunner  = "sk-go-runner-0123456789"
	goKeyRotated = "sk-go-rotated-0123456789"
)

func hexSHA(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// assertClean fails when text holds a plaintext key or its hash's prefix.
func assertClean(t *testing.T, what string, text []byte) {
	t.Helper()
	for _, k := range []string{goKeySupport, goKeyRunner, goKeyRotated} {
		if strings.Contains(string(text), k) || strings.Contains(string(text), hexSHA(k)[:16]) {
			t.Fatalf("%s holds key material: %s", what, text)
		}
	}
}

// openKeyed opens chainConfig(dep) with prices and the key "support-bot"
// (team "support", alias "smart"), plus extra top-level members.
func openKeyed(t *testing.T, dep string, extra map[string]any) *llmux.Gateway {
	t.Helper()
	members := map[string]any{"keys": map[string]any{"support-bot": map[string]any{
		"sha256": hexSHA(goKeySupport), "team": "support", "models": []string{"smart"}}}}
	for k, v := range extra {
		members[k] = v
	}
	return openPricedWith(t, chainConfig(dep), members)
}

func TestKeysAddRotateRevoke(t *testing.T) {
	dep := deployment(t, "keys")
	gw := openKeyed(t, dep, nil)
	ctx := context.Background()
	mustChat(t, gw, ask("hi"), llmux.WithKey(goKeySupport))

	_, err := gw.Chat(ctx, ask("hi"), llmux.WithKey("sk-go-unknown-0123456789"))
	e := asError(t, err)
	if e.Code != llmux.StatusAuth || e.Message != "unknown gateway key" {
		t.Fatalf("unknown key: %v", err)
	}
	if n := simGet(t, dep).Requests; n != 1 {
		t.Fatalf("the simulator saw %d requests, want 1", n)
	}

	if err := gw.AddKey("runner", llmux.KeySpec{Key: goKeyRunner, Team: "ops",
		Limits: &llmux.Limits{RPM: 1000}}); err != nil {
		t.Fatal(err)
	}
	mustChat(t, gw, ask("hi"), llmux.WithKey(goKeyRunner))
	err = gw.AddKey("again", llmux.KeySpec{Key: goKeySupport})
	if e := asError(t, err); e.Code != llmux.StatusInvalidArgument ||
		e.Message != `key "again" has the same secret as key "support-bot"` {
		t.Fatalf("duplicate secret: %v", err)
	}
	if err := gw.RotateKey("runner", goKeyRotated); err != nil {
		t.Fatal(err)
	}
	if _, err := gw.Chat(ctx, ask("hi"), llmux.WithKey(goKeyRunner)); asError(t, err).Code != llmux.StatusAuth {
		t.Fatalf("the old secret after rotation: %v", err)
	}
	mustChat(t, gw, ask("hi"), llmux.WithKey(goKeyRotated))
	if err := gw.RevokeKey("runner"); err != nil {
		t.Fatal(err)
	}
	_, err = gw.Chat(ctx, ask("hi"), llmux.WithKey(goKeyRotated))
	e = asError(t, err)
	if e.Code != llmux.StatusAuth || e.Message != `gateway key "runner" is revoked` {
		t.Fatalf("revoked: %v", err)
	}
	assertClean(t, "error trace", e.Meta.Trace.Raw)
	if e.Meta.Trace.Key != "runner" {
		t.Fatalf("trace key = %q, want runner", e.Meta.Trace.Key)
	}
	if err := gw.RevokeKey("nobody"); asError(t, err).Code != llmux.StatusInvalidArgument {
		t.Fatalf("revoke of an unknown id: %v", err)
	}

	keys, err := gw.Keys()
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(keys)
	assertClean(t, "Keys", raw)
	if len(keys) != 2 || keys[0].ID != "support-bot" || keys[0].State != "active" ||
		keys[1].ID != "runner" || keys[1].State != "revoked" || keys[1].Team != "ops" {
		t.Fatalf("Keys = %+v", keys)
	}

	team, err := gw.Spend(llmux.GroupByTeam)
	if err != nil {
		t.Fatal(err)
	}
	assertClean(t, "Spend", team.Raw)
	if r := team.Row("ops"); r == nil || r.Calls != 3 || r.Errors != 1 {
		t.Fatalf("team ops row: %+v", r)
	}
	if r := team.Row("support"); r == nil || r.Calls != 1 {
		t.Fatalf("team support row: %+v", r)
	}
	alias, _ := gw.Spend(llmux.GroupByAlias)
	if r := alias.Row("smart"); r == nil || r.Calls != 3 {
		t.Fatalf("alias smart row: %+v", r)
	}
}

func TestKeysRateLimitAndPermission(t *testing.T) {
	dep := deployment(t, "keys")
	gw := openKeyed(t, dep, map[string]any{"teams": map[string]any{
		"support": map[string]any{"limits": map[string]int{"rpm": 1}}}})
	mustChat(t, gw, ask("hi"), llmux.WithKey(goKeySupport))
	_, err := gw.Chat(context.Background(), ask("hi"), llmux.WithKey(goKeySupport))
	e := asError(t, err)
	if e.Code != llmux.StatusRateLimit || !strings.HasPrefix(e.Message, `rate limit: team "support" is over its rpm limit of 1`) {
		t.Fatalf("rate limit: %v", err)
	}
	if ra := e.Meta.Trace.RetryAfterMS; ra == nil || *ra <= 59000 || *ra > 60000 {
		t.Fatalf("retry_after_ms = %v, want most of a minute", ra)
	}
	if n := simGet(t, dep).Requests; n != 1 {
		t.Fatalf("the simulator saw %d requests, want 1", n)
	}
}

func TestKeysBudgetAlerts(t *testing.T) {
	dep := deployment(t, "keys")
	gw := openKeyed(t, dep, map[string]any{"budgets": []map[string]any{
		{"usd": 0.0001, "period": "month", "alert_at": []float64{0.25, 0.5}}}})
	var mu sync.Mutex
	var alerts []llmux.Alert
	if err := gw.OnAlert(func(a llmux.Alert) {
		mu.Lock()
		alerts = append(alerts, a)
		mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	req := ask("hi")
	max := 4
	req.MaxTokens = &max
	var refused *llmux.Error
	var spent int64
	for i := 0; i < 20 && refused == nil; i++ {
		resp, err := gw.Chat(context.Background(), req, llmux.WithKey(goKeySupport))
		if err != nil {
			refused = asError(t, err)
			break
		}
		spent += nusd(resp.Meta.PromptTokens, resp.Meta.CompletionTokens)
	}
	if refused == nil || refused.Code != llmux.StatusBudget ||
		!strings.HasPrefix(refused.Message, "budget exceeded: global month budget of $0.000100 has $") {
		t.Fatalf("budget refusal: %v", refused)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(alerts) != 2 || alerts[0].Threshold != 0.25 || alerts[1].Threshold != 0.5 ||
		alerts[0].Scope != "global" || alerts[0].Period != "month" {
		t.Fatalf("alerts = %+v", alerts)
	}
	b, err := gw.Budgets()
	if err != nil || len(b) != 1 || b[0].SpentNUSD != spent || b[0].HeldNUSD != 0 || spent > 100000 {
		t.Fatalf("Budgets = %+v (%v), spent %d", b, err, spent)
	}
}
