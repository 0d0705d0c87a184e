module github.com/llmux/llmux/bench/go

go 1.23

require github.com/llmux/llmux/bindings/go v0.0.0

replace github.com/llmux/llmux/bindings/go => ../../bindings/go
