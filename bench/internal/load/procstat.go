package load

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
)

// clockTicks is USER_HZ, the unit of utime/stime in /proc/PID/stat. It is 100
// on every Linux architecture Go supports.
const clockTicks = 100

// ProcSample is one reading of a process's memory and CPU usage.
type ProcSample struct {
	RSSKiB     int64   // VmRSS
	HWMKiB     int64   // VmHWM (peak RSS over the process lifetime)
	CPUSeconds float64 // utime + stime
}

// ReadProc reads /proc/PID/status and /proc/PID/stat (pid 0 means this
// process).
func ReadProc(pid int) (ProcSample, error) {
	dir := "/proc/self"
	if pid > 0 {
		dir = "/proc/" + strconv.Itoa(pid)
	}
	var s ProcSample
	status, err := os.ReadFile(dir + "/status")
	if err != nil {
		return s, err
	}
	s.RSSKiB, s.HWMKiB = parseStatus(status)
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return s, err
	}
	s.CPUSeconds, err = parseStatCPU(stat)
	return s, err
}

// CountFDs returns the number of open file descriptors of process pid (0:
// this process), from /proc/PID/fd.
func CountFDs(pid int) (int, error) {
	dir := "/proc/self/fd"
	if pid > 0 {
		dir = "/proc/" + strconv.Itoa(pid) + "/fd"
	}
	f, err := os.Open(dir)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	return len(names), err
}

// parseStatus extracts VmRSS and VmHWM (in KiB) from /proc/PID/status.
func parseStatus(b []byte) (rss, hwm int64) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case bytes.HasPrefix(line, []byte("VmRSS:")):
			rss = parseKiB(line[len("VmRSS:"):])
		case bytes.HasPrefix(line, []byte("VmHWM:")):
			hwm = parseKiB(line[len("VmHWM:"):])
		}
	}
	return rss, hwm
}

func parseKiB(v []byte) int64 {
	f := bytes.Fields(v)
	if len(f) == 0 {
		return 0
	}
	n, _ := strconv.ParseInt(string(f[0]), 10, 64)
	return n
}

// parseStatCPU returns utime+stime in seconds from /proc/PID/stat. The
// command name (field 2) may contain spaces and parentheses, so fields are
// counted from the last ')'.
func parseStatCPU(b []byte) (float64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("procstat: malformed stat")
	}
	f := bytes.Fields(b[i+1:])
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, errors.New("procstat: short stat")
	}
	ut, err1 := strconv.ParseInt(string(f[11]), 10, 64)
	st, err2 := strconv.ParseInt(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("procstat: bad cpu fields %q %q", f[11], f[12])
	}
	return float64(ut+st) / clockTicks, nil
}

// procSampler polls a process (or several: their RSS and CPU added) every
// interval and remembers the peak RSS.
type procSampler struct {
	pids []int
	stop chan struct{}
	done chan struct{}

	mu      sync.Mutex
	last    ProcSample
	peakRSS int64
	err     error
}

func startProcSampler(pid int, every time.Duration, more ...int) *procSampler {
	p := &procSampler{pids: append([]int{pid}, more...), stop: make(chan struct{}), done: make(chan struct{})}
	p.poll()
	go func() {
		defer close(p.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				p.poll()
			}
		}
	}()
	return p
}

func (p *procSampler) poll() ProcSample {
	var s ProcSample
	var err error
	for _, pid := range p.pids {
		one, e := ReadProc(pid)
		s.RSSKiB, s.HWMKiB, s.CPUSeconds = s.RSSKiB+one.RSSKiB, s.HWMKiB+one.HWMKiB, s.CPUSeconds+one.CPUSeconds
		if err == nil {
			err = e
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		if p.err == nil {
			p.err = err
		}
		return p.last
	}
	p.last = s
	if s.RSSKiB > p.peakRSS {
		p.peakRSS = s.RSSKiB
	}
	return s
}

// now takes a fresh sample (also folded into the peak).
func (p *procSampler) now() ProcSample { return p.poll() }

// resetPeak restarts peak tracking from the current RSS.
func (p *procSampler) resetPeak() {
	s := p.poll()
	p.mu.Lock()
	p.peakRSS = s.RSSKiB
	p.mu.Unlock()
}

func (p *procSampler) peak() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.peakRSS
}

func (p *procSampler) firstErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

func (p *procSampler) close() {
	close(p.stop)
	<-p.done
}

// readHostBusy returns the machine's busy and total CPU time (seconds, all
// cores) from /proc/stat; iowait counts as idle.
func readHostBusy() (busy, total float64, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	return parseHostBusy(b)
}

func parseHostBusy(b []byte) (busy, total float64, err error) {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := bytes.Fields(line)
	if len(f) < 5 || string(f[0]) != "cpu" {
		return 0, 0, errors.New("procstat: malformed /proc/stat")
	}
	var sum, idle int64
	for i, v := range f[1:] {
		if i >= 8 { // guest times are already included in user/nice
			break
		}
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			return 0, 0, err
		}
		sum += n
		if i == 3 || i == 4 { // idle, iowait
			idle += n
		}
	}
	return float64(sum-idle) / clockTicks, float64(sum) / clockTicks, nil
}

// loadAvg returns the 1-minute load average, or -1.
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := bytes.Fields(b)
	if len(f) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(string(f[0]), 64)
	if err != nil {
		return -1
	}
	return v
}
