// Command bench_go: the Go binding against the floor called from Go, with N
// goroutines sharing one gateway (the floor: one C client per goroutine), in
// alternating blocks. Prints JSON lines (bench/bench_common.h) on stdout.
//
//	go build -tags llmux -o bench_go . && ./bench_go -base http://127.0.0.1:PORT -goroutines 8
//
// Without the llmux build tag only the floor row runs.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	systemText = "You are a terse assistant. Answer in one short sentence."
	userText   = "Summarise why an HTTP client should reuse its connections when it talks to a model " +
		"provider many times a second."
)

func messages() []message {
	return []message{{"system", systemText}, {"user", userText}}
}

// Set by llmux.go when built with -tags llmux.
var newLlmux func(base string) (func() (string, error), func(), error)

type row struct {
	Suite      string    `json:"suite"`
	Name       string    `json:"name"`
	Unit       string    `json:"unit,omitempty"`
	Baseline   string    `json:"baseline,omitempty"`
	Goroutines int       `json:"goroutines,omitempty"`
	Placement  string    `json:"placement,omitempty"`
	Samples    []float64 `json:"samples,omitempty"`
	NotRun     string    `json:"not_run,omitempty"`
}

func emit(r row) {
	b, _ := json.Marshal(r)
	fmt.Println(string(b))
}

func check(content string, err error) error {
	if err != nil {
		return err
	}
	if !strings.HasPrefix(content, "[a] "+userText[:20]) {
		return fmt.Errorf("unexpected answer %q", content)
	}
	return nil
}

// block runs call on n goroutines for d and returns calls per second.
func block(n int, d time.Duration, call func(i int) error) (float64, error) {
	var stop atomic.Bool
	var total atomic.Int64
	var firstErr atomic.Value
	var ready, wg sync.WaitGroup
	start := make(chan struct{})
	ready.Add(n)
	wg.Add(n)
	for i := 0; i < n; i++ {
		go func(i int) {
			defer wg.Done()
			ready.Done()
			<-start
			var k int64
			for !stop.Load() {
				if err := call(i); err != nil {
					firstErr.CompareAndSwap(nil, err)
					break
				}
				k++
			}
			total.Add(k)
		}(i)
	}
	ready.Wait()
	t0 := time.Now()
	close(start)
	time.Sleep(d)
	stop.Store(true)
	wg.Wait()
	el := time.Since(t0).Seconds()
	if e := firstErr.Load(); e != nil {
		return 0, e.(error)
	}
	return float64(total.Load()) / el, nil
}

func main() {
	base := flag.String("base", "", "simulator base URL, http://127.0.0.1:PORT")
	goroutines := flag.Int("goroutines", 1, "concurrent callers")
	reps := flag.Int("reps", 5, "repetitions")
	secs := flag.Float64("secs", 1.0, "seconds per block")
	placement := flag.String("placement", "", "recorded beside the rows")
	only := flag.String("only", "", "floor or llmux: run that side alone, no rows (for profiling)")
	cpuprofile := flag.String("cpuprofile", "", "write a pprof CPU profile of the timed blocks")
	flag.Parse()
	if *base == "" {
		fmt.Fprintln(os.Stderr, "bench_go: -base is required")
		os.Exit(2)
	}
	n := *goroutines
	d := time.Duration(*secs * float64(time.Second))
	floors := make([]*floorClient, n)
	for i := range floors {
		floors[i] = newFloorClient(*base + "/a/v1/chat/completions")
	}
	floorCall := func(i int) error { return check(floors[i].chat("m")) }

	var llmuxCall func(i int) error
	notRun := "built without the llmux tag (the Go binding is not available)"
	if newLlmux != nil {
		call, closeFn, err := newLlmux(*base)
		if err != nil {
			notRun = "llmux.Open failed: " + err.Error()
		} else {
			defer closeFn()
			llmuxCall = func(int) error { return check(call()) }
			if err := llmuxCall(0); err != nil {
				notRun = "first call failed: " + err.Error()
				llmuxCall = nil
			}
		}
	}
	if err := floorCall(0); err != nil {
		fmt.Fprintln(os.Stderr, "bench_go: floor call failed:", err)
		os.Exit(1)
	}
	// warm-up: every goroutine's connection
	block(n, d/4, floorCall)
	if llmuxCall != nil {
		block(n, d/4, llmuxCall)
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench_go:", err)
			os.Exit(1)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	if *only != "" {
		call := floorCall
		if *only == "llmux" {
			call = llmuxCall
		}
		if call == nil {
			fmt.Fprintln(os.Stderr, "bench_go: -only", *only, "is not available:", notRun)
			os.Exit(2)
		}
		for r := 0; r < *reps; r++ {
			v, err := block(n, d, call)
			if err != nil {
				fmt.Fprintln(os.Stderr, "bench_go:", err)
				os.Exit(1)
			}
			fmt.Fprintf(os.Stderr, "go %s %d goroutines: %.0f/s (%.1f us/call)\n", *only, n, v, 1e6/v*float64(n))
		}
		return
	}
	var fl, lx []float64
	for r := 0; r < *reps; r++ {
		order := []string{"floor", "llmux"}
		if r%2 == 1 {
			order = []string{"llmux", "floor"}
		}
		for _, which := range order {
			switch {
			case which == "floor":
				v, err := block(n, d, floorCall)
				if err != nil {
					fmt.Fprintln(os.Stderr, "bench_go: floor:", err)
					os.Exit(1)
				}
				fl = append(fl, v)
			case llmuxCall != nil:
				v, err := block(n, d, llmuxCall)
				if err != nil {
					fmt.Fprintln(os.Stderr, "bench_go: llmux:", err)
					os.Exit(1)
				}
				lx = append(lx, v)
			}
		}
		fmt.Fprintf(os.Stderr, "go %d goroutines rep %d/%d: floor %.0f/s", n, r+1, *reps, fl[len(fl)-1])
		if llmuxCall != nil {
			fmt.Fprintf(os.Stderr, ", llmux %.0f/s", lx[len(lx)-1])
		}
		fmt.Fprintln(os.Stderr)
	}
	fname := fmt.Sprintf("go_floor_g%d", n)
	emit(row{Suite: "go", Name: fname, Unit: "calls/s", Goroutines: n, Placement: *placement, Samples: fl})
	lname := fmt.Sprintf("go_llmux_g%d", n)
	if llmuxCall != nil {
		emit(row{Suite: "go", Name: lname, Unit: "calls/s", Baseline: fname, Goroutines: n,
			Placement: *placement, Samples: lx})
	} else {
		emit(row{Suite: "go", Name: lname, NotRun: notRun})
	}
	for _, f := range floors {
		f.close()
	}
}
