package llmux_test

import (
	"encoding/json"
	"strings"
	"testing"

	llmux "github.com/llmux/llmux/bindings/go"
)

// An unset key variable is a warning the application can read, and strict
// mode refuses the config (issue 25.2).
func TestWarningsUnsetKeyAndStrict(t *testing.T) {
	t.Parallel()
	a := deployment(t, "a")
	c := chainConfig(a)
	p := c.Providers["p0"]
	p.APIKeyEnv = unsetKeyEnv
	c.Providers["p0"] = p
	gw := open(t, c)
	w, err := gw.Warnings()
	if err != nil {
		t.Fatal(err)
	}
	want := "providers.p0.api_key_env: the environment variable " + unsetKeyEnv +
		" is not set: calls to this provider fail (auth) and fall back to the next target"
	if len(w) != 1 || w[0] != want {
		t.Fatalf("warnings = %q, want [%q]", w, want)
	}
	raw, _ := json.Marshal(c)
	strict := strings.Replace(string(raw), "{", `{"strict":true,`, 1)
	if g, err := llmux.Open([]byte(strict)); err == nil || !strings.Contains(err.Error(), `"strict" is true`) {
		if g != nil {
			g.Close()
		}
		t.Fatalf("strict open: %v", err)
	}
	ok := open(t, chainConfig(a))
	if w, err := ok.Warnings(); err != nil || len(w) != 0 {
		t.Fatalf("warnings without a key variable = %q, %v", w, err)
	}
}
