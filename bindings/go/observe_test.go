package llmux_test

import (
	"bufio"
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	llmux "github.com/llmux/llmux/bindings/go"
)

// series reads "name{labels} value" lines of the exposition text.
func series(t *testing.T, text string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad sample line %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

// The metrics count the calls made, and the log callback gets every record
// (issue 22).
func TestMetricsAndLogCallback(t *testing.T) {
	t.Parallel()
	a, b := deployment(t, "a"), deployment(t, "b")
	gw := openChain(t, a, b)
	var mu sync.Mutex
	var recs []map[string]any
	err := gw.SetLogCallback(func(rec []byte) {
		var m map[string]any
		if err := json.Unmarshal(rec, &m); err != nil {
			t.Errorf("record is not JSON: %s", rec)
		}
		mu.Lock()
		recs = append(recs, m)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := gw.Chat(ctx, ask("one two"), llmux.WithKey("gk-go-secret")); err != nil {
		t.Fatal(err)
	}
	simPut(t, a, `{"faults":[{"type":"status","status":503}]}`)
	if _, err := gw.Chat(ctx, ask("three")); err != nil {
		t.Fatal(err)
	}
	bad := *ask("x")
	bad.Model = "missing"
	if _, err := gw.Chat(ctx, &bad); err == nil {
		t.Fatal("an unknown model answered")
	}
	if err := gw.FlushLog(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	text, err := gw.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	m := series(t, text)
	want := map[string]float64{
		`llmux_calls_total{provider="p0",model="m-0"}`:                                          1,
		`llmux_calls_total{provider="p1",model="m-1"}`:                                          1,
		`llmux_calls_total{provider="(none)",model="(none)"}`:                                   1,
		`llmux_call_errors_total{provider="(none)",model="(none)",error_class="unknown_model"}`: 1,
		`llmux_attempts_total{provider="p0",model="m-0",outcome="provider"}`:                    1,
		`llmux_call_duration_seconds_count`:                                                     3,
		`llmux_calls_in_flight`:                                                                 0,
		`llmux_log_records_total`:                                                               6,
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v\n%s", k, m[k], v, text)
		}
	}
	if err := gw.SetLogCallback(nil); err != nil {
		t.Fatal(err)
	}
	if _, err := gw.Chat(ctx, ask("not logged")); err != nil {
		t.Fatal(err)
	}
	if err := gw.FlushLog(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	// 2 attempts + call, 1 attempt + call, and the refused call alone
	if len(recs) != 6 {
		t.Fatalf("%d records, want 6: %v", len(recs), recs)
	}
	calls := 0
	for _, r := range recs {
		if r["event.name"] == "llmux.call" {
			calls++
		}
		raw, _ := json.Marshal(r)
		if strings.Contains(string(raw), "gk-go-secret") {
			t.Fatalf("a record holds the gateway key: %s", raw)
		}
	}
	if calls != 3 || recs[1]["gen_ai.response.model"] != "m-0" || recs[1]["llmux.key_id"] == nil {
		t.Fatalf("records: %v", recs)
	}
	gw.Close()
	if _, err := gw.Metrics(); err != llmux.ErrClosed {
		t.Fatalf("Metrics after Close: %v", err)
	}
}
