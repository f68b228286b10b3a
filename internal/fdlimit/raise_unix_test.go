//go:build linux || darwin

package fdlimit_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/fdlimit"
)

// childEnv names the environment variable that makes the test binary, run
// again by a test, play the child: its value is the scenario.
const childEnv = "FDLIMIT_TEST_CHILD"

func TestCurrent(t *testing.T) {
	t.Parallel()
	l, err := fdlimit.Current()
	if err != nil {
		t.Fatal(err)
	}
	var sys syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &sys); err != nil {
		t.Fatal(err)
	}
	if l.Soft != sys.Cur || l.Hard != sys.Max || l.Soft == 0 || l.Soft > l.Hard {
		t.Errorf("Current() = %+v, getrlimit says %+v", l, sys)
	}
}

// TestRaise runs each scenario in a child process, since raising (and, to
// set the scene, lowering) the limit changes the whole process, and a hard
// limit once lowered cannot be raised again.
func TestRaise(t *testing.T) {
	if scenario := os.Getenv(childEnv); scenario != "" {
		raiseChild(t, scenario)
		return
	}
	t.Parallel()
	for _, scenario := range []string{"soft-below-hard", "hard-lowered", "already-raised"} {
		t.Run(scenario, func(t *testing.T) {
			t.Parallel()
			runChild(t, "^TestRaise$", scenario)
		})
	}
}

// runChild runs the test binary again, with only the test named by run, as
// the child for scenario, and fails if the child fails.
func runChild(t *testing.T, run, scenario string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run="+run, "-test.v", "-test.count=1") //nolint:gosec // G702: the test binary runs itself again, with a test name of its own
	cmd.Env = append(os.Environ(), childEnv+"="+scenario)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS") {
		t.Fatalf("child %s: %v\n%s", scenario, err, out)
	}
	t.Logf("child %s:\n%s", scenario, out)
}

func raiseChild(t *testing.T, scenario string) {
	before, err := fdlimit.Current()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("limits at start: %+v", before)
	hard := before.Hard
	switch scenario {
	case "soft-below-hard":
		if hard < 128 {
			t.Skipf("hard limit %d too low to lower the soft one", hard)
		}
		setrlimit(t, 64, hard)
	case "hard-lowered":
		hard = min(hard, 900)
		setrlimit(t, 300, hard)
	case "already-raised":
		setrlimit(t, hard, hard)
	default:
		t.Fatalf("unknown scenario %q", scenario)
	}
	if lowered, _ := fdlimit.Current(); lowered.Hard != hard {
		t.Fatalf("setting the scene: limits are %+v, want the hard limit %d", lowered, hard)
	} else {
		t.Logf("limits before Raise: %+v", lowered)
	}
	got, err := fdlimit.Raise()
	if err != nil {
		t.Fatal(err)
	}
	want := fdlimit.Limits{Soft: hard, Hard: hard}
	if runtime.GOOS == "darwin" {
		if most, err := sysctlMaxFilesPerProc(); err == nil && most < want.Soft {
			want.Soft = most
		}
	}
	if got != want {
		t.Errorf("Raise() = %+v, want %+v", got, want)
	}
	if now, _ := fdlimit.Current(); now != got {
		t.Errorf("Raise() = %+v, but the system now says %+v", got, now)
	}
	t.Logf("raised to %+v, listener budget %d", got, fdlimit.Budget(got.Soft))
}

func setrlimit(t *testing.T, soft, hard uint64) {
	t.Helper()
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: soft, Max: hard}); err != nil {
		t.Fatalf("setrlimit(%d, %d): %v", soft, hard, err)
	}
}

func sysctlMaxFilesPerProc() (uint64, error) {
	out, err := exec.Command("sysctl", "-n", "kern.maxfilesperproc").Output()
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		return 0, errors.Join(err, errors.New(string(out)))
	}
	return n, nil
}
