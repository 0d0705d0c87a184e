package llmux_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"

	llmux "github.com/llmux/llmux/bindings/go"
)

// openJournal opens chainConfig(dep) with a price for m-0 and a ledger journal at path.
func openJournal(t *testing.T, dep, path string) *llmux.Gateway {
	t.Helper()
	var cfg map[string]any
	if err := json.Unmarshal(chainConfig(dep).JSON(t), &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["prices"] = map[string]any{"m-0": map[string]float64{"input_mtok": 2, "output_mtok": 5}}
	cfg["ledger"] = map[string]any{"journal": path, "fsync": "every_call"}
	raw, _ := json.Marshal(cfg)
	gw, err := llmux.Open(raw)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return gw
}

func TestLedgerExport(t *testing.T) {
	t.Parallel()
	dep := deployment(t, "a")
	path := filepath.Join(t.TempDir(), "spend.journal")
	gw := openJournal(t, dep, path)
	defer func() { gw.Close() }()
	for i := 0; i < 4; i++ {
		mustChat(t, gw, ask("one two three"), llmux.WithWorkflow([]string{"w,a", "w-b"}[i%2]))
	}
	total, err := gw.Spend(llmux.GroupByTotal)
	if err != nil {
		t.Fatal(err)
	}

	jl, err := gw.Export(llmux.ExportJSONL, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSuffix(jl, []byte("\n")), []byte("\n"))
	if len(lines) != 4 {
		t.Fatalf("%d lines: %s", len(lines), jl)
	}
	var sum int64
	for _, l := range lines {
		var rec struct {
			Type     string `json:"type"`
			Workflow string `json:"workflow"`
			Calls    int64  `json:"calls"`
			Cost     int64  `json:"cost_nusd"`
		}
		if err := json.Unmarshal(l, &rec); err != nil || rec.Type != "call" || rec.Calls != 1 {
			t.Fatalf("record %s: %v", l, err)
		}
		sum += rec.Cost
	}
	if total.Total.CostNUSD == nil || sum != *total.Total.CostNUSD {
		t.Fatalf("export sums to %d, the report says %v", sum, total.Total.CostNUSD)
	}

	c, err := gw.Export(llmux.ExportCSV, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(bytes.NewReader(c)).ReadAll()
	if err != nil || len(rows) != 5 || rows[0][3] != "workflow" {
		t.Fatalf("csv %q: %v", c, err)
	}
	if rows[1][3] != "w,a" && rows[2][3] != "w,a" {
		t.Fatalf("the quoted workflow is not read back whole: %q", rows)
	}

	// periods: an hour either side holds everything, the next hour nothing
	now := time.Now()
	rep, err := gw.SpendPeriod(llmux.GroupByWorkflow, now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil || rep.Total.Calls != 4 || rep.Row("w,a").Calls != 2 {
		t.Fatalf("period report %v: %v", rep, err)
	}
	rep, err = gw.SpendPeriod(llmux.GroupByTotal, now.Add(time.Hour), time.Time{})
	if err != nil || rep.Total.Calls != 0 {
		t.Fatalf("future report %v: %v", rep, err)
	}
	if out, err := gw.Export(llmux.ExportJSONL, now.Add(time.Hour), time.Time{}); err != nil || len(out) != 0 {
		t.Fatalf("future export %q: %v", out, err)
	}
	if _, err := gw.Export("xml", time.Time{}, time.Time{}); !errors.Is(err, llmux.ErrInvalidArgument) {
		t.Fatalf("xml: %v", err)
	}

	// compaction keeps the totals; a reopened gateway replays them
	if err := gw.CompactLedger(); err != nil {
		t.Fatal(err)
	}
	gw.Close()
	gw = openJournal(t, dep, path)
	again, err := gw.Spend(llmux.GroupByTotal)
	if err != nil || again.Total.Calls != 4 || *again.Total.CostNUSD != sum {
		t.Fatalf("after reopening: %s: %v", again.Raw, err)
	}
	jl, _ = gw.Export(llmux.ExportJSONL, time.Time{}, time.Time{})
	if !bytes.Contains(jl, []byte(`"type":"summary"`)) {
		t.Fatalf("no summary after compaction: %s", jl)
	}
}

func TestExportWithoutJournal(t *testing.T) {
	t.Parallel()
	gw := openChain(t, deployment(t, "a"))
	if _, err := gw.Export(llmux.ExportJSONL, time.Time{}, time.Time{}); !errors.Is(err, llmux.ErrUnsupported) {
		t.Fatalf("export without a journal: %v", err)
	}
	if err := gw.CompactLedger(); !errors.Is(err, llmux.ErrUnsupported) {
		t.Fatalf("compact without a journal: %v", err)
	}
}
