package llmux_test

import "syscall"

// simProcAttr makes the simulator die with the test process, even when the
// tests crash before TestMain can stop it.
func simProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
