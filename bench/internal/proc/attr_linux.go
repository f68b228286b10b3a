//go:build linux

package proc

import "syscall"

// childAttr makes the kernel kill a child if its parent dies, so that no
// server is left behind even on SIGKILL.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
