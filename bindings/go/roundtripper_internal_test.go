package llmux

import (
	"strconv"
	"testing"
)

// The per-gateway store of RoundTripper calls keeps the last RecentCalls.
func TestRecentCallsBounded(t *testing.T) {
	g := new(Gateway)
	r := &g.recent
	for i := 0; i < RecentCalls+2; i++ {
		r.put("c"+strconv.Itoa(i), Meta{Provider: "p" + strconv.Itoa(i)})
	}
	for _, gone := range []string{"c0", "c1"} {
		if _, ok := g.CallMeta(gone); ok {
			t.Fatalf("%s is still there", gone)
		}
	}
	for _, kept := range []int{2, RecentCalls + 1} {
		m, ok := g.CallMeta("c" + strconv.Itoa(kept))
		if !ok || m.Provider != "p"+strconv.Itoa(kept) {
			t.Fatalf("c%d: %v %+v", kept, ok, m)
		}
	}
	if len(r.byID) != RecentCalls {
		t.Fatalf("%d entries", len(r.byID))
	}
}

func TestAliasNames(t *testing.T) {
	got := aliasNames([]byte(`{"providers":{},"models":{"b":{},"a":{}}}`))
	if len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Fatalf("%v", got)
	}
	if aliasNames([]byte(`not json`)) != nil {
		t.Fatal("aliases of invalid JSON")
	}
}
