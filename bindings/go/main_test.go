package llmux_test

// The tests drive libllmux against llmux-sim, the project's provider
// simulator. TestMain starts the binary named by LLMUX_SIM on a free port and
// stops it at the end; every test uses deployments of its own, so tests run
// in parallel without seeing each other's faults.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	llmux "github.com/llmux/llmux/bindings/go"
)

var (
	simURL string // http://127.0.0.1:PORT

	deploymentSeq atomic.Int64
)

// Environment variables the configs of the tests name.
const (
	keyEnv      = "LLMUX_GO_TEST_KEY"       // set to testKey
	wrongKeyEnv = "LLMUX_GO_TEST_WRONG_KEY" // set to a key the simulator rejects
	unsetKeyEnv = "LLMUX_GO_TEST_UNSET_KEY" // never set
	testKey     = "sk-go-test-1"
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	sim := os.Getenv("LLMUX_SIM")
	if sim == "" {
		fmt.Fprintln(os.Stderr, "llmux go tests: set LLMUX_SIM to the path of the llmux-sim binary "+
			"(e.g. LLMUX_SIM=/path/to/build/bin/llmux-sim go test ./...)")
		return 2
	}
	if fi, err := os.Stat(sim); err != nil || fi.IsDir() {
		fmt.Fprintf(os.Stderr, "llmux go tests: LLMUX_SIM=%q is not an executable file: %v\n", sim, err)
		return 2
	}
	os.Setenv(keyEnv, testKey)
	os.Setenv(wrongKeyEnv, "sk-wrong")
	os.Unsetenv(unsetKeyEnv)

	dir, err := os.MkdirTemp("", "llmux-go-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "llmux go tests:", err)
		return 2
	}
	defer os.RemoveAll(dir)
	portFile := filepath.Join(dir, "port")
	cmd := exec.Command(sim, "--port", "0", "--port-file", portFile, "--quiet")
	cmd.Stdout = io.Discard
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = simProcAttr()
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "llmux go tests: cannot start %s: %v\n", sim, err)
		return 2
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}()

	port, err := waitPortFile(portFile, exited)
	if err != nil {
		fmt.Fprintf(os.Stderr, "llmux go tests: %s did not start: %v\n", sim, err)
		return 2
	}
	simURL = "http://127.0.0.1:" + strconv.Itoa(port)
	code := m.Run()
	if code == 0 {
		if leaked := leakedGoroutines(); leaked != "" {
			fmt.Fprintf(os.Stderr, "llmux go tests: goroutines of the binding still running:\n%s\n", leaked)
			code = 1
		}
	}
	return code
}

// leakedGoroutines returns the stacks of binding goroutines (streams, calls
// abandoned by their context) still running once every gateway is closed.
func leakedGoroutines() string {
	var stacks string
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		stacks = ""
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "bindings/go.(*stream).run") || strings.Contains(g, "bindings/go.(*Gateway).chat.func") {
				stacks += g + "\n\n"
			}
		}
		if stacks == "" {
			return ""
		}
	}
	return stacks
}

func waitPortFile(path string, exited <-chan error) (int, error) {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return 0, fmt.Errorf("it exited: %v", err)
		default:
		}
		if b, err := os.ReadFile(path); err == nil {
			if p, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && p > 0 {
				return p, nil
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return 0, fmt.Errorf("no port in %s after 10s", path)
}

// ----------------------------------------------------------------- simulator

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// deployment returns a simulator deployment name no other test uses.
func deployment(t testing.TB, role string) string {
	name := unsafeName.ReplaceAllString(strings.TrimPrefix(t.Name(), "Test"), "-")
	if len(name) > 40 {
		name = name[:40]
	}
	return fmt.Sprintf("%s-%s-%d", name, role, deploymentSeq.Add(1))
}

// simPut sets a deployment's settings (faults, latency, require_key).
func simPut(t testing.TB, name, settings string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, simURL+"/_sim/deployments/"+name, strings.NewReader(settings))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("PUT /_sim/deployments/%s: %v", name, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("PUT /_sim/deployments/%s %s: %d %s", name, settings, resp.StatusCode, body)
	}
}

type simState struct {
	Name          string `json:"name"`
	Requests      int    `json:"requests"`
	FaultsApplied int    `json:"faults_applied"`
	LastRequest   struct {
		Path          string          `json:"path"`
		Authorization string          `json:"authorization"`
		Body          json.RawMessage `json:"body"`
	} `json:"last_request"`
}

// simGet reads a deployment's counters and last request.
func simGet(t testing.TB, name string) simState {
	t.Helper()
	resp, err := http.Get(simURL + "/_sim/deployments/" + name)
	if err != nil {
		t.Fatalf("GET /_sim/deployments/%s: %v", name, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /_sim/deployments/%s: %d %s", name, resp.StatusCode, body)
	}
	var st simState
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatalf("GET /_sim/deployments/%s: %v in %s", name, err, body)
	}
	return st
}

// ------------------------------------------------------------------- configs

// provider is one provider of a test config.
type provider struct {
	Type      string `json:"type"`
	BaseURL   string `json:"base_url"`
	APIKeyEnv string `json:"api_key_env,omitempty"`
	TimeoutMS int64  `json:"timeout_ms,omitempty"`
}

type target struct {
	Provider string `json:"provider"`
	Model    string `json:"model"`
}

type testConfig struct {
	Providers map[string]provider            `json:"providers"`
	Models    map[string]map[string][]target `json:"models"`
	Defaults  map[string]int64               `json:"defaults,omitempty"`
	Routing   map[string]any                 `json:"routing,omitempty"`
}

func simProvider(dep string) provider {
	return provider{Type: "openai", BaseURL: simURL + "/" + dep + "/v1"}
}

// chainConfig has providers p0, p1, ... on the given deployments and the alias
// "smart" trying them in that order with models m-0, m-1, ...
func chainConfig(deps ...string) *testConfig {
	c := &testConfig{
		Providers: map[string]provider{},
		Models:    map[string]map[string][]target{"smart": {"targets": nil}},
		Defaults:  map[string]int64{"timeout_ms": 10000, "connect_timeout_ms": 2000},
	}
	for i, d := range deps {
		name := "p" + strconv.Itoa(i)
		c.Providers[name] = simProvider(d)
		c.Models["smart"]["targets"] = append(c.Models["smart"]["targets"],
			target{Provider: name, Model: "m-" + strconv.Itoa(i)})
	}
	return c
}

func (c *testConfig) JSON(t testing.TB) []byte {
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// open opens a gateway that the test closes when it ends.
func open(t testing.TB, c *testConfig) *llmux.Gateway {
	t.Helper()
	gw, err := llmux.Open(c.JSON(t))
	if err != nil {
		t.Fatalf("Open: %v\nconfig: %s", err, c.JSON(t))
	}
	t.Cleanup(func() { gw.Close() })
	return gw
}

// openChain opens a gateway over chainConfig(deps...).
func openChain(t testing.TB, deps ...string) *llmux.Gateway {
	t.Helper()
	return open(t, chainConfig(deps...))
}

func ask(text string) *llmux.ChatRequest {
	return &llmux.ChatRequest{Model: "smart", Messages: []llmux.Message{llmux.UserMessage(text)}}
}

// closedPortURL is a base URL nothing listens on.
func closedPortURL(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr + "/v1"
}

func mustChat(t testing.TB, gw *llmux.Gateway, req *llmux.ChatRequest, opts ...llmux.CallOption) *llmux.ChatResponse {
	t.Helper()
	resp, err := gw.Chat(context.Background(), req, opts...)
	if err != nil {
		t.Fatalf("Chat: %v", err)
	}
	return resp
}

// asError extracts the *llmux.Error of err, failing the test if there is none.
func asError(t testing.TB, err error) *llmux.Error {
	t.Helper()
	var e *llmux.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *llmux.Error", err, err)
	}
	return e
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}
