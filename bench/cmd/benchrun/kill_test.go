package main

import "syscall"

// syscallKill0 checks whether a process exists.
func syscallKill0(pid int) error { return syscall.Kill(pid, 0) }
