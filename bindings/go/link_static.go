//go:build llmux_static

package llmux

// With the llmux_static build tag (go build -tags llmux_static), libllmux.a
// is linked into the program, which then needs no LD_LIBRARY_PATH for it;
// libcurl, cJSON and libcrypto stay shared system libraries. -Bstatic makes
// the linker take libllmux.a for the first -lllmux, and --as-needed drops the
// shared library that the -lllmux of pkg-config names again (nothing is left
// for it to provide).

/*
#cgo LDFLAGS: -Wl,-Bstatic -lllmux -Wl,-Bdynamic -Wl,--as-needed
#cgo pkg-config: llmux libcurl libcjson libcrypto
*/
import "C"
