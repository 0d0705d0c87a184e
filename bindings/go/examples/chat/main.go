// Command chat shows the llmux Go binding against llmux-sim: an alias with
// two targets whose first one fails, so every answer comes from the second,
// and the trace says why.
//
//	llmux-sim --port 8080 &
//	go run ./examples/chat -sim-url http://127.0.0.1:8080
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	llmux "github.com/llmux/llmux/bindings/go"
)

func main() {
	simURL := flag.String("sim-url", "", "base URL of a running llmux-sim, e.g. http://127.0.0.1:8080")
	flag.Parse()
	if *simURL == "" {
		fmt.Fprintln(os.Stderr, "usage: chat -sim-url http://127.0.0.1:PORT")
		os.Exit(2)
	}
	if err := run(strings.TrimRight(*simURL, "/")); err != nil {
		fmt.Fprintln(os.Stderr, "chat:", err)
		os.Exit(1)
	}
}

func run(simURL string) error {
	// The primary deployment answers every request with 503.
	if err := simPut(simURL, "example-primary",
		`{"faults":[{"type":"status","status":503,"count":-1}]}`); err != nil {
		return err
	}
	if err := simPut(simURL, "example-backup", `{}`); err != nil {
		return err
	}

	config := fmt.Sprintf(`{
	  "providers": {
	    "primary": {"type": "openai", "base_url": "%[1]s/example-primary/v1"},
	    "backup":  {"type": "openai", "base_url": "%[1]s/example-backup/v1"}
	  },
	  "models": {
	    "smart": {"targets": [{"provider": "primary", "model": "big-model"},
	                          {"provider": "backup",  "model": "small-model"}]}
	  },
	  "defaults": {"timeout_ms": 10000, "connect_timeout_ms": 2000}
	}`, simURL)
	gw, err := llmux.Open([]byte(config))
	if err != nil {
		return err
	}
	defer gw.Close()
	fmt.Println("libllmux", llmux.Version())

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	questions := []string{"What is a gateway?", "Name three rivers.", "Say hello."}
	for i, q := range questions {
		resp, err := gw.Chat(ctx, &llmux.ChatRequest{
			Model:    "smart",
			Messages: []llmux.Message{llmux.SystemMessage("Be brief."), llmux.UserMessage(q)},
		}, llmux.WithWorkflow("example"), llmux.WithTask(fmt.Sprint("question-", i+1)), llmux.WithTrace())
		if err != nil {
			return err
		}
		fmt.Printf("\n> %s\n%s\n", q, resp.Text())
		cost := "unknown"
		if usd, known := resp.Meta.Cost(); known {
			cost = fmt.Sprintf("$%.6f", usd)
		}
		fmt.Printf("  answered by %s/%s, %d+%d tokens, cost %s\n", resp.Meta.Provider, resp.Meta.Model,
			resp.Meta.PromptTokens, resp.Meta.CompletionTokens, cost)
		for n, a := range resp.Meta.Trace.Attempts {
			fmt.Printf("  attempt %d: %s/%s -> %s (HTTP %d) %s; %s\n", n+1, a.Provider, a.Model,
				a.Outcome, a.HTTPStatus, a.Error, a.Action)
		}
	}

	// Streaming: print the words as they arrive.
	fmt.Print("\n> stream: tell me a story\n")
	s, err := gw.ChatStream(ctx, &llmux.ChatRequest{
		Model:    "smart",
		Messages: []llmux.Message{llmux.UserMessage("once upon a time there was a gateway")},
	}, llmux.WithTrace())
	if err != nil {
		return err
	}
	for chunk, err := range s.All() {
		if err != nil {
			return err
		}
		fmt.Print(chunk.Text())
	}
	resp, err := s.Result()
	if err != nil {
		return err
	}
	fmt.Printf("\n  streamed by %s/%s in %d chunks\n", resp.Meta.Provider, resp.Meta.Model, resp.Meta.Trace.Chunks)

	// Errors carry their class: an unknown alias.
	_, err = gw.Chat(ctx, &llmux.ChatRequest{Model: "nope", Messages: []llmux.Message{llmux.UserMessage("?")}})
	if errors.Is(err, llmux.ErrUnknownModel) {
		fmt.Printf("\nunknown alias -> %v\n", err)
	}

	rep, err := gw.Spend(llmux.GroupByProvider)
	if err != nil {
		return err
	}
	fmt.Println("\nspend by provider:")
	for _, r := range rep.Rows {
		fmt.Printf("  %-8s calls %d, errors %d, tokens %d+%d\n", r.Group, r.Calls, r.Errors,
			r.PromptTokens, r.CompletionTokens)
	}
	fmt.Printf("  total    calls %d, errors %d\n", rep.Total.Calls, rep.Total.Errors)
	fmt.Println("\ntrace of the last answer:")
	var pretty bytes.Buffer
	json.Indent(&pretty, resp.Meta.Trace.Raw, "  ", "  ")
	fmt.Println(" ", pretty.String())
	return nil
}

// simPut scripts a simulator deployment through its control API.
func simPut(simURL, name, settings string) error {
	req, err := http.NewRequest(http.MethodPut, simURL+"/_sim/deployments/"+name, strings.NewReader(settings))
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("is llmux-sim running at %s? %w", simURL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("PUT /_sim/deployments/%s: %d %s", name, resp.StatusCode, body)
	}
	return nil
}
