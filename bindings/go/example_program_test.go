package llmux_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestExampleProgram builds examples/chat and runs it against the simulator.
func TestExampleProgram(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a program; skipped with -short")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command in PATH")
	}
	bin := filepath.Join(t.TempDir(), "chat")
	if out, err := exec.Command(goTool, append(append([]string{"build"}, exampleBuildFlags...),
		"-o", bin, "./examples/chat")...).CombinedOutput(); err != nil {
		t.Fatalf("go build ./examples/chat: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "-sim-url", simURL).CombinedOutput()
	if err != nil {
		t.Fatalf("examples/chat: %v\n%s", err, out)
	}
	for _, want := range []string{
		"[example-backup] What is a gateway?",
		"answered by backup/small-model",
		"attempt 1: primary/big-model -> provider (HTTP 503)",
		"streamed by backup/small-model",
		`"provider_model": "small-model"`,
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
