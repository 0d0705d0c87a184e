//go:build !llmux_static

package llmux

// By default the program links the shared libllmux that pkg-config finds
// (llmux.pc); at run time the dynamic linker must find it too: install it in
// a system directory, set LD_LIBRARY_PATH, or build with
// CGO_LDFLAGS="-Wl,-rpath,<prefix>/lib". See docs/go.md.

/*
#cgo pkg-config: llmux
*/
import "C"
