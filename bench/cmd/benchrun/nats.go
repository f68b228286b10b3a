package main

// The NATS targets: the service in its scale-out mode, its instances sharing
// one JetStream stream on a nats-server that the bench starts itself, on
// loopback, for each run (and stops by PID, as every server):
//
//   - ours-nats: one instance; every POST goes through the stream (stored,
//     acknowledged) and comes back to the instance's listeners through its
//     consumer;
//   - ours-nats3: three instances; the listeners read the first one, the
//     producers post to the second and the third, so every event crosses
//     instances. The server CPU reported is the three instances' together.
//
// nats-server's own CPU is not the service's: sseload counts it with the
// other processes.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/SRGSSR/pillarbox-event-dispatcher/bench/internal/proc"
)

// natsServerBinary is the executable the NATS targets run; CI installs it
// with `go install github.com/nats-io/nats-server/v2@v2.15.2`.
const natsServerBinary = "nats-server"

// findNATSServer returns the path of nats-server: on PATH, else in the
// directory `go install` puts binaries in.
func findNATSServer(ctx context.Context) (string, error) {
	if path, err := exec.LookPath(natsServerBinary); err == nil {
		return path, nil
	}
	out, err := exec.CommandContext(ctx, "go", "env", "GOBIN", "GOPATH").Output()
	if err == nil {
		lines := strings.Split(strings.TrimRight(string(out), "\r\n"), "\n")
		var dirs []string
		if len(lines) == 2 {
			if gobin := strings.TrimSpace(lines[0]); gobin != "" {
				dirs = append(dirs, gobin)
			}
			for _, gopath := range filepath.SplitList(strings.TrimSpace(lines[1])) {
				dirs = append(dirs, filepath.Join(gopath, "bin"))
			}
		}
		for _, d := range dirs {
			path := filepath.Join(d, natsServerBinary)
			if st, err := os.Stat(path); err == nil && !st.IsDir() {
				return path, nil
			}
		}
	}
	return "", errors.New("nats-server not found on PATH nor in $(go env GOPATH)/bin: " +
		"go install github.com/nats-io/nats-server/v2@v2.15.2")
}

// running is a target's processes during one run: the instance the
// listeners read, the other instances, and the nats-server, if any.
type running struct {
	main   *proc.Server
	others []*proc.Server
	nats   *proc.Server
	store  string // nats-server's store directory, removed at stop
}

// stop stops the instances, then nats-server, by PID.
func (r *running) stop() {
	for _, s := range r.others {
		s.Stop()
	}
	r.main.Stop()
	if r.nats != nil {
		r.nats.Stop()
		_ = os.RemoveAll(r.store)
	}
}

// died returns the first process that exited, nil if none did.
func (r *running) died() *proc.Server {
	for _, s := range append(append([]*proc.Server{r.main}, r.others...), r.nats) {
		if s == nil {
			continue
		}
		select {
		case <-s.Done():
			return s
		default:
		}
	}
	return nil
}

// loadFlags are the sseload flags that point at the processes: where
// producers post when not to the listeners' instance, and the other
// instances' PIDs.
func (r *running) loadFlags() []string {
	if len(r.others) == 0 {
		return nil
	}
	urls := make([]string, len(r.others))
	pids := make([]string, len(r.others))
	for i, s := range r.others {
		urls[i] = "http://" + s.Addr()
		pids[i] = strconv.Itoa(s.PID())
	}
	return []string{"-post-url", strings.Join(urls, ","), "-extra-pids", strings.Join(pids, ",")}
}

// startRunning starts a target's processes: for a NATS target, nats-server
// and then its instances; logs go to logBase.<n>.log ("" for none).
func startRunning(ctx context.Context, o *options, t *target, logBase string) (*running, error) {
	logPath := func(suffix string) string {
		if logBase == "" {
			return ""
		}
		return logBase + suffix + ".log"
	}
	if t.instances == 0 {
		srv, err := startTarget(ctx, o, t, logPath(""))
		if err != nil {
			return nil, err
		}
		return &running{main: srv}, nil
	}
	r := &running{}
	ok := false
	defer func() {
		if !ok {
			r.stopStarted()
		}
	}()
	var natsURL string
	var err error
	r.nats, natsURL, r.store, err = startNATS(ctx, o, logPath(".nats"))
	if err != nil {
		return nil, fmt.Errorf("target %s: %w", t.name, err)
	}
	for i := range t.instances {
		inst := *t
		inst.args = t.args + " -nats-url " + natsURL
		suffix := ""
		if i > 0 {
			suffix = "." + strconv.Itoa(i+1)
		}
		srv, err := startTarget(ctx, o, &inst, logPath(suffix))
		if err != nil {
			return nil, err
		}
		if i == 0 {
			r.main = srv
		} else {
			r.others = append(r.others, srv)
		}
	}
	ok = true
	return r, nil
}

// stopStarted stops what a failed start left running.
func (r *running) stopStarted() {
	for _, s := range r.others {
		s.Stop()
	}
	if r.main != nil {
		r.main.Stop()
	}
	if r.nats != nil {
		r.nats.Stop()
		_ = os.RemoveAll(r.store)
	}
}

// startNATS starts nats-server with JetStream on free loopback ports, its
// store in a new temporary directory, and waits until its monitoring
// endpoint says JetStream is up. It returns the client URL.
func startNATS(ctx context.Context, o *options, logPath string) (*proc.Server, string, string, error) {
	if o.natsServer == "" {
		return nil, "", "", errors.New("nats-server not found")
	}
	port, err := proc.FreePort()
	if err != nil {
		return nil, "", "", err
	}
	mport, err := proc.FreePort()
	if err != nil {
		return nil, "", "", err
	}
	store, err := os.MkdirTemp("", "benchrun-nats-")
	if err != nil {
		return nil, "", "", err
	}
	srv, err := o.g.StartServer(ctx, proc.ServerSpec{
		Name: "nats-server", Bin: o.natsServer,
		Args: []string{"-js", "-a", "127.0.0.1", "-p", strconv.Itoa(port), "-m", strconv.Itoa(mport), "-sd", store},
		Addr: "127.0.0.1:" + strconv.Itoa(mport), HealthPath: "/healthz?js-enabled-only=true", LogPath: logPath,
	})
	if err != nil {
		_ = os.RemoveAll(store)
		return nil, "", "", err
	}
	return srv, "nats://127.0.0.1:" + strconv.Itoa(port), store, nil
}
