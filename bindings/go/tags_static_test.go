//go:build llmux_static

package llmux_test

// exampleBuildFlags builds the example program the way the tests were built.
var exampleBuildFlags = []string{"-tags", "llmux_static"}
