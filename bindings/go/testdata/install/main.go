// The program tools/test.sh builds from a fresh module outside the
// repository, to test the install recipe of docs/go.md: it links libllmux,
// opens a gateway and prints the library's version.
package main

import (
	"fmt"
	"log"

	llmux "github.com/llmux/llmux/bindings/go"
)

func main() {
	gw, err := llmux.Open([]byte(`{"providers":{"p":{"type":"openai","base_url":"http://127.0.0.1:9/v1"}},
		"models":{"m":{"targets":[{"provider":"p","model":"x"}]}}}`))
	if err != nil {
		log.Fatal(err)
	}
	defer gw.Close()
	fmt.Println("libllmux", llmux.Version())
}
