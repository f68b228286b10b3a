//go:build linux

package main

import "syscall"

// childAttr makes the kernel kill a child if benchrun itself dies, so no
// server is left behind even on SIGKILL.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
