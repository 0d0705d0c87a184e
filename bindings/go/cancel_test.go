package llmux_test

// Context cancellation stops the C call itself (llmux_cancel): the call
// returns at the cancel, and the gateway's Close right afterwards does not
// wait for a provider that holds its answer.

import (
	"context"
	"errors"
	"testing"
	"time"

	llmux "github.com/llmux/llmux/bindings/go"
)

const (
	holdMS      = 3000                   // the provider holds its answer this long
	cancelAt    = 100 * time.Millisecond // the context is cancelled then
	returnBy    = 250 * time.Millisecond // the call has returned by then (~cancelAt + a few ms)
	closeWithin = 50 * time.Millisecond  // Close afterwards: the C call has really stopped
)

// openHeld opens a gateway (closed by the test itself) on a deployment that
// answers after holdMS.
func openHeld(t *testing.T) *llmux.Gateway {
	t.Helper()
	dep := deployment(t, "held")
	simPut(t, dep, `{"faults":[{"type":"latency","ms":3000,"count":-1}]}`)
	gw, err := llmux.Open(chainConfig(dep).JSON(t))
	if err != nil {
		t.Fatal(err)
	}
	return gw
}

// closesAtOnce closes gw and fails when that waited for a call.
func closesAtOnce(t *testing.T, gw *llmux.Gateway) {
	t.Helper()
	start := time.Now()
	gw.Close()
	if took := time.Since(start); took > closeWithin {
		t.Errorf("Close took %v after the cancelled call returned: the C call was still running", took)
	}
}

func wantCancelled(t *testing.T, err error, took time.Duration, what string) {
	t.Helper()
	if took > returnBy {
		t.Errorf("%s returned after %v, want by %v (cancelled at %v, provider holds %d ms)",
			what, took, returnBy, cancelAt, holdMS)
	}
	if !errors.Is(err, llmux.ErrCancelled) || !errors.Is(err, context.Canceled) {
		t.Errorf("%s error = %v, want one matching ErrCancelled and context.Canceled", what, err)
	}
}

// cancelledCall makes call on a provider that holds its answer, with a
// context cancelled at cancelAt, and checks that the call returns at the
// cancel and that Close afterwards does not wait.
func cancelledCall(t *testing.T, what string, call func(*llmux.Gateway, context.Context) error) error {
	t.Helper()
	gw := openHeld(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	time.AfterFunc(cancelAt, cancel)
	start := time.Now()
	err := call(gw, ctx)
	wantCancelled(t, err, time.Since(start), what)
	closesAtOnce(t, gw)
	return err
}

func TestChatCancelStopsTheCCall(t *testing.T) {
	t.Parallel()
	err := cancelledCall(t, "Chat", func(gw *llmux.Gateway, ctx context.Context) error {
		_, err := gw.Chat(ctx, ask("hold on"))
		return err
	})
	// the C call's own result came back: its trace shows the attempt cut short
	if e := asError(t, err); len(e.Meta.Trace.Attempts) != 1 || e.Meta.Trace.Attempts[0].Outcome != "cancelled" {
		t.Errorf("trace attempts = %+v, want one attempt with outcome cancelled", e.Meta.Trace.Attempts)
	}
}

func TestStreamCancelStopsTheCCall(t *testing.T) {
	t.Parallel()
	cancelledCall(t, "ChatStream", func(gw *llmux.Gateway, ctx context.Context) error {
		s, err := gw.ChatStream(ctx, ask("hold on"))
		if s != nil {
			t.Errorf("ChatStream returned a stream with %v", err)
		}
		return err
	})
}

// Stream.Close on a provider that stalls after its first chunk.
func TestStreamCloseStopsTheCCall(t *testing.T) {
	t.Parallel()
	dep := deployment(t, "stall")
	simPut(t, dep, `{"faults":[{"type":"slow_stream","ms":3000,"count":-1}]}`)
	gw, err := llmux.Open(chainConfig(dep).JSON(t))
	if err != nil {
		t.Fatal(err)
	}
	s, err := gw.ChatStream(context.Background(), ask("one two three"))
	if err != nil {
		t.Fatal(err)
	}
	if !s.Next() {
		t.Fatalf("no first chunk: %v", s.Err())
	}
	start := time.Now()
	s.Close()
	_, err = s.Result()
	if took := time.Since(start); took > returnBy-cancelAt {
		t.Errorf("Result after Close took %v: the stalled transfer was not stopped", took)
	}
	if !errors.Is(err, llmux.ErrCancelled) {
		t.Errorf("Result() error = %v, want ErrCancelled", err)
	}
	closesAtOnce(t, gw)
}
