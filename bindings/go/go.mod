module github.com/llmux/llmux/bindings/go

go 1.23
