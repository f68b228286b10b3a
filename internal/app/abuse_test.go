package app_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The abuse tests run the real binary with its defaults and measure, from
// outside, what hostile clients cost it: memory (the process's resident
// size, from /proc) and kernel memory (each connection's send queue, from
// /proc/net/tcp). They assert memory bounds, never timings, and log the
// figures.

// procStatus returns a field of /proc/<pid>/status in KiB.
func procStatus(t *testing.T, pid int, field string) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			if err != nil {
				t.Fatalf("%s: %q", field, line)
			}
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// resetPeak makes the process's peak resident size (VmHWM) its current one.
func resetPeak(t *testing.T, pid int) {
	t.Helper()
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
		t.Skipf("cannot reset the peak resident size: %v", err)
	}
}

// TestBatchMemoryFollowsWhatIsSent: eight 1 MiB NDJSON batches posted at
// once raise the service's resident memory by at most 64 MB, whether they
// are refused (349,525 tiny events: over -max-batch-events; or a bad last
// line) or accepted (1,024 events of 1 KiB).
func TestBatchMemoryFollowsWhatIsSent(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	t.Parallel()
	s := startBinary(t, 0, "-port", "127.0.0.1:0", "-heartbeat", "1h")
	pid := s.cmd.Process.Pid
	tiny := strings.Repeat("{}\n", (1<<20)/3)
	var kib strings.Builder
	for i := range 1024 {
		line := fmt.Sprintf(`{"i":%d,"pad":"`, i)
		kib.WriteString(line + strings.Repeat("x", 1020-len(line)) + "\"}\n")
	}
	accepted := kib.String()
	badLast := accepted[:len(accepted)-len("x\"}\n")] + "\n" // the last line is cut short
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	post := func(body string) int {
		resp, err := client.Post("http://"+s.addr+"/api/events", "application/x-ndjson", strings.NewReader(body))
		if err != nil {
			t.Error(err)
			return 0
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	post(`{"warm":1}` + "\n")
	for _, tc := range []struct {
		name, body string
		status     int
	}{
		{"349,525 tiny events, refused", tiny, http.StatusRequestEntityTooLarge},
		{"1,024 events of 1 KiB, the last one invalid", badLast, http.StatusBadRequest},
		{"1,024 events of 1 KiB, accepted", accepted, http.StatusOK},
	} {
		before := procStatus(t, pid, "VmRSS")
		resetPeak(t, pid)
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				if got := post(tc.body); got != tc.status {
					t.Errorf("%s: status %d, want %d", tc.name, got, tc.status)
				}
			})
		}
		wg.Wait()
		peak := procStatus(t, pid, "VmHWM")
		t.Logf("%s: 8 batches of %d KiB at once: resident %d MiB before, peak %d MiB (+%d MiB)",
			tc.name, len(tc.body)>>10, before>>10, peak>>10, (peak-before)>>10)
		if grew := peak - before; grew > 64<<10 {
			t.Errorf("%s: resident memory grew by %d MiB, want at most 64", tc.name, grew>>10)
		}
	}
}

// tcpSendQueues returns the send queue (bytes) of every connection whose
// local port is port (the listening socket aside), established or closing,
// from /proc/net/tcp and tcp6.
func tcpSendQueues(t *testing.T, port int) []int {
	t.Helper()
	var queues []int
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Skipf("no %s: %v", file, err)
		}
		for line := range strings.SplitSeq(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) < 5 || f[3] == "0A" { // the listening socket
				continue
			}
			_, localPort, ok := strings.Cut(f[1], ":")
			if p, err := strconv.ParseUint(localPort, 16, 32); !ok || err != nil || int(p) != port {
				continue
			}
			tx, _, _ := strings.Cut(f[4], ":")
			n, err := strconv.ParseUint(tx, 16, 64)
			if err != nil {
				t.Fatalf("%s: %q", file, line)
			}
			queues = append(queues, int(n))
		}
	}
	return queues
}

// tcpMemPages returns the kernel's TCP memory in use, in pages, from
// /proc/net/sockstat (the whole machine's: logged, not asserted).
func tcpMemPages(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/net/sockstat")
	if err != nil {
		return -1
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "TCP: "); ok {
			f := strings.Fields(rest)
			for i := 0; i+1 < len(f); i += 2 {
				if f[i] == "mem" {
					n, _ := strconv.Atoi(f[i+1])
					return n
				}
			}
		}
	}
	return -1
}

// TestStuckListenersHoldBoundedKernelMemory: listeners that never read
// (a 4 KiB receive buffer), beside healthy ones, while events flow: each
// one's connection holds at most about the capped send buffer in the
// kernel (not the megabytes the kernel's own sizing grows to), the healthy
// ones lose nothing, and once the service cuts the stuck ones, their
// connections are reset and what was queued for them is dropped.
func TestStuckListenersHoldBoundedKernelMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	t.Parallel()
	const stuckN, healthyN, events = 40, 10, 400
	s := startBinary(t, 0, "-port", "127.0.0.1:0", "-heartbeat", "1h", "-write-timeout", "3s")
	_, portText, _ := strings.Cut(s.addr, ":")
	port, _ := strconv.Atoi(portText)
	memBefore := tcpMemPages(t)
	stuck := make([]net.Conn, stuckN)
	for i := range stuck {
		stuck[i], _ = s.stream(t, 4096)
	}
	received := make([]chan int, healthyN)
	for i := range received {
		_, body := s.stream(t, 0)
		received[i] = make(chan int, 1)
		go func() {
			n := 0
			for n < events {
				line, err := body.ReadString('\n')
				if err != nil {
					break
				}
				if strings.HasPrefix(line, "data: ") {
					n++
				}
			}
			received[i] <- n
		}()
	}
	client := &http.Client{Transport: &http.Transport{}}
	began := time.Now()
	pad := strings.Repeat("x", 4<<10)
	for n := range events { // 1.6 MiB for each listener
		resp, err := client.Post("http://"+s.addr+"/api/events", "application/json",
			strings.NewReader(fmt.Sprintf(`{"n":%d,"pad":%q}`, n, pad)))
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
	}
	for i, ch := range received {
		select {
		case n := <-ch:
			if n != events {
				t.Errorf("healthy listener %d got %d events, want %d", i, n, events)
			}
		case <-time.After(time.Minute):
			t.Fatalf("healthy listener %d: no end", i)
		}
	}
	t.Logf("posted and delivered in %v", time.Since(began).Round(time.Millisecond))
	queues := tcpSendQueues(t, port)
	most, total := 0, 0
	for _, q := range queues {
		most, total = max(most, q), total+q
	}
	t.Logf("%d stuck listeners: send queues up to %d KiB each, %d KiB in all; TCP memory %d pages before, %d now",
		stuckN, most>>10, total>>10, memBefore, tcpMemPages(t))
	if most > 256<<10 {
		t.Errorf("a stuck listener's connection holds %d KiB in the kernel, want at most 256", most>>10)
	}
	// Cut after the write timeout: reset, so their queues are dropped.
	eventually(t, "stuck listeners cut and their queues dropped", func() bool {
		left := 0
		for _, q := range tcpSendQueues(t, port) {
			left += q
		}
		return left == 0
	})
	t.Logf("after the cut: TCP memory %d pages", tcpMemPages(t))
	for _, c := range stuck {
		buf := make([]byte, 64<<10)
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		var err error
		for err == nil {
			_, err = c.Read(buf)
		}
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("a stuck listener's connection ended with %v, want a reset", err)
			break
		}
	}
}
