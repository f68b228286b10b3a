package app

import "syscall"

func raiseDescriptorLimit() (soft, hard uint64, err error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, 0, err
	}
	rl.Cur = rl.Max
	err = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl)
	return rl.Cur, rl.Max, err
}

func listenerBudget(soft uint64) int { return int(soft) - max(256, int(soft)/10) }
