package app_test

// The end-to-end run: the real nats-server binary and two dispatcher
// processes built from the repository. `make e2e-nats` runs it alone.

import (
	"bufio"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	json "github.com/goccy/go-json"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/natstest"
	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/sseclient"
)

// TestE2ENATS: two dispatcher processes share a nats-server process. Events
// posted to one reach the listeners of both, once each, in one order with
// the same ids; a listener resumes on the other process with an id it saw on
// the first and gets exactly the events after it; both processes stop
// cleanly on SIGTERM, ending their streams on a retry hint.
func TestE2ENATS(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs nats-server")
	}
	t.Parallel()
	ns := natstest.RunBinary(t)
	bin := build(t)
	a := startProcess(t, bin, "a", ns.URL())
	b := startProcess(t, bin, "b", ns.URL())
	la, lb := a.listen(t, ""), b.listen(t, "")

	all := events("e2e", 0, 30)
	for _, e := range all[:20] {
		a.mustPost(t, e)
	}
	seen := la.waitData(t, all[:20])
	checkConsecutive(t, "listener on a", seen, 1)
	sameOrder(t, []*listener{la, lb}, [][]sseclient.Message{seen, lb.waitData(t, all[:20])})

	resumed := b.listen(t, seen[9].ID)
	resumed.waitData(t, all[10:20])
	for _, e := range all[20:] {
		a.mustPost(t, e)
	}
	got := resumed.waitData(t, all[10:])
	checkConsecutive(t, "resumed on b", got, 11)

	for _, p := range []*instance{a, b} {
		if err := p.stop(); err != nil {
			t.Fatalf("process %s: %v", p.name, err)
		}
	}
	for _, l := range []*listener{la, lb, resumed} {
		raw, err := l.waitEnd(t)
		if !retryEnd.MatchString(raw) {
			t.Errorf("stream on %s ended with %v, on %q", l.name, err, raw[max(0, len(raw)-100):])
		}
	}
	if n := len(la.messages()); n != len(all) {
		t.Errorf("listener on a got %d events, want %d", n, len(all))
	}
	if n := len(lb.messages()); n != len(all) {
		t.Errorf("listener on b got %d events, want %d", n, len(all))
	}
}

// startProcess runs the dispatcher binary against natsURL and returns it
// once it logged its address. Its stop sends SIGTERM and waits for a zero
// exit; at t's cleanup a process still running is killed by its PID.
func startProcess(t *testing.T, bin, name, natsURL string) *instance {
	t.Helper()
	logs := &syncBuffer{}
	cmd := exec.Command(bin, natsArgs(natsURL)...)
	cmd.Env = os.Environ()
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var once sync.Once
	var stopErr error
	stop := func() error {
		once.Do(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case stopErr = <-exited:
			case <-time.After(wait):
				_ = cmd.Process.Kill()
				stopErr = fmt.Errorf("no exit within %v of SIGTERM: %w", wait, <-exited)
			}
		})
		return stopErr
	}
	t.Cleanup(func() {
		_ = stop()
		if t.Failed() {
			t.Logf("log of process %s:\n%s", name, tail(logs.String(), 60))
		}
	})

	var addr string
	poll(t, func() error {
		select {
		case err := <-exited:
			exited <- err
			return fmt.Errorf("process %s exited: %w", name, err)
		default:
		}
		sc := bufio.NewScanner(strings.NewReader(logs.String()))
		for sc.Scan() {
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" {
				addr = line.Addr
				return nil
			}
		}
		return errors.New("no listening line yet")
	})
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &instance{client: &http.Client{Transport: tr}, stop: stop, logs: logs, name: name, addr: addr}
}
