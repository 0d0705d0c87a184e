package llmux_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	llmux "github.com/llmux/llmux/bindings/go"
)

func ExampleGateway_Chat() {
	gw, err := llmux.OpenFile("llmux.json")
	if err != nil {
		log.Fatal(err) // an *llmux.Error of class ErrConfig names the JSON path
	}
	defer gw.Close()

	resp, err := gw.Chat(context.Background(), &llmux.ChatRequest{
		Model:    "smart",
		Messages: []llmux.Message{llmux.UserMessage("Hello!")},
	}, llmux.WithWorkflow("support-bot"), llmux.WithTask("greet"))
	var e *llmux.Error
	switch {
	case errors.Is(err, llmux.ErrRateLimit):
		log.Print("every target is throttled; try later")
		return
	case errors.As(err, &e):
		log.Printf("%v (HTTP %d); attempts: %+v", e, e.HTTPStatus, e.Meta.Trace.Attempts)
		return
	case err != nil:
		log.Fatal(err)
	}
	fmt.Println(resp.Meta.Provider, resp.Meta.Model, resp.Text())
}

func ExampleGateway_ChatStream() {
	gw, err := llmux.OpenFile("llmux.json")
	if err != nil {
		log.Fatal(err)
	}
	defer gw.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // cancelling stops the transfer at once
	s, err := gw.ChatStream(ctx, &llmux.ChatRequest{
		Model:    "smart",
		Messages: []llmux.Message{llmux.UserMessage("Tell me a story.")},
	})
	if err != nil {
		log.Fatal(err)
	}
	for chunk, err := range s.All() {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Print(chunk.Text())
	}
	resp, err := s.Result() // the assembled completion, with Meta and trace
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("\nanswered by", resp.Meta.Model)
}

func ExampleGateway_Spend() {
	gw, err := llmux.OpenFile("llmux.json")
	if err != nil {
		log.Fatal(err)
	}
	defer gw.Close()

	rep, err := gw.Spend(llmux.GroupByTask)
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range rep.Rows {
		fmt.Printf("%s: %d calls, %d errors, %d+%d tokens\n", r.Group, r.Calls, r.Errors,
			r.PromptTokens, r.CompletionTokens)
	}
}
