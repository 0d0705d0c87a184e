//go:build llmux

package main

import (
	"context"
	"fmt"

	llmux "github.com/llmux/llmux/bindings/go"
)

func init() { newLlmux = openLlmux }

func openLlmux(base string) (func() (string, error), func(), error) {
	cfg := fmt.Sprintf(`{"providers":{"a":{"type":"openai","base_url":"%s/a/v1"}},`+
		`"models":{"one":{"targets":[{"provider":"a","model":"m"}]}},`+
		`"defaults":{"timeout_ms":30000}}`, base)
	gw, err := llmux.Open([]byte(cfg))
	if err != nil {
		return nil, nil, err
	}
	maxTokens := 64
	ctx := context.Background()
	call := func() (string, error) {
		resp, err := gw.Chat(ctx, &llmux.ChatRequest{
			Model: "one",
			Messages: []llmux.Message{llmux.SystemMessage(systemText),
				llmux.UserMessage(userText)},
			MaxTokens: &maxTokens,
		})
		if err != nil {
			return "", err
		}
		return resp.Text(), nil
	}
	return call, func() { gw.Close() }, nil
}
