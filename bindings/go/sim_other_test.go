//go:build !linux

package llmux_test

import "syscall"

func simProcAttr() *syscall.SysProcAttr { return nil }
