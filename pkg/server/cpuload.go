package server

import (
	"bytes"
	"os"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// cpuLoad measures how busy the machine is, for the write budget: the share
// of the machine's CPU time that was not idle since the previous sample,
// from /proc/stat (every process counts: it is what the machine has to
// spare), or, where /proc/stat cannot be read, this process's own CPU time
// over the CPUs it may use. It is safe for concurrent use; a sample costs a
// file read.
type cpuLoad struct {
	mu          sync.Mutex
	busy, total uint64 // /proc/stat's jiffies at the previous sample
	cpu         time.Duration
	at          time.Time // the previous sample of the process's CPU time
}

// sample returns the busy share since the previous call (0 to 1), negative
// for the first call, when nothing can be measured, or when another sample
// is being taken (a budget window can end while the previous one's sampler
// is still reading).
func (l *cpuLoad) sample() float64 {
	if !l.mu.TryLock() {
		return -1
	}
	defer l.mu.Unlock()
	if busy, total, ok := readProcStat(); ok {
		share := -1.0
		if l.total > 0 && total > l.total {
			share = float64(busy-l.busy) / float64(total-l.total)
		}
		l.busy, l.total = busy, total
		return share
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	now := time.Now()
	share := -1.0
	if !l.at.IsZero() && now.After(l.at) {
		share = float64(cpu-l.cpu) / float64(now.Sub(l.at)) / float64(runtime.GOMAXPROCS(0))
	}
	l.cpu, l.at = cpu, now
	return min(share, 1)
}

// readProcStat returns the machine's busy and total CPU time in jiffies
// from the first line of /proc/stat ("cpu user nice system idle iowait irq
// softirq steal ..."): busy is all but idle and iowait.
func readProcStat() (busy, total uint64, ok bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, false
	}
	line, _, _ := bytes.Cut(b, []byte{'\n'})
	fields := bytes.Fields(line)
	if len(fields) < 5 || string(fields[0]) != "cpu" {
		return 0, 0, false
	}
	for i, f := range fields[1:] {
		n, err := strconv.ParseUint(string(f), 10, 64)
		if err != nil {
			return 0, 0, false
		}
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total, true
}
