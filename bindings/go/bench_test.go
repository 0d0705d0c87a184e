package llmux_test

import (
	"context"
	"testing"

	llmux "github.com/llmux/llmux/bindings/go"
)

// The benchmarks measure one call through the binding, libllmux and the
// simulator on loopback. Run them with
//
//	LLMUX_SIM=.../llmux-sim go test -run '^$' -bench . -benchtime 2s
//
// and pin the test and the simulator to separate cores for stable numbers.

func benchGateway(b *testing.B) *llmux.Gateway {
	b.Helper()
	dep := deployment(b, "bench")
	return openChain(b, dep)
}

func BenchmarkChat(b *testing.B) {
	gw := benchGateway(b)
	req := ask("benchmark me")
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := gw.Chat(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkChatParallel(b *testing.B) {
	gw := benchGateway(b)
	req := ask("benchmark me")
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := gw.Chat(ctx, req); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkChatStream(b *testing.B) {
	gw := benchGateway(b)
	req := ask("benchmark me with a few words")
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s, err := gw.ChatStream(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		for s.Next() {
		}
		if _, err := s.Result(); err != nil {
			b.Fatal(err)
		}
	}
}
