package opsdocs_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// command runs name with args in dir and returns its exit code and its
// output (stdout and stderr).
func command(t *testing.T, dir string, env []string, name string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String()
	case errors.As(err, &exit):
		return exit.ExitCode(), out.String()
	default:
		t.Fatalf("%s %q: %v", name, args, err)
		return 0, ""
	}
}

// TestFuzzScript runs scripts/fuzz.sh (make fuzz, .ci/run) on a module of
// its own: every target runs although the first one fails, the failure is
// listed at the end, and the exit status says so.
func TestFuzzScript(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and fuzzes a module")
	}
	t.Parallel()
	script, err := filepath.Abs(filepath.Join(root, "scripts", "fuzz.sh"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "go.mod"), "module fuzzdemo\n\ngo 1.26\n")
	for name, text := range map[string]string{
		"a/a_test.go": `package a

import "testing"

func FuzzFails(f *testing.F) {
	f.Add(1)
	f.Fuzz(func(t *testing.T, n int) { t.Fatal("fails on every input") })
}

func FuzzPassesA(f *testing.F) {
	f.Add(1)
	f.Fuzz(func(t *testing.T, n int) {})
}
`,
		"b/b_test.go": `package b

import "testing"

func FuzzPassesB(f *testing.F) {
	f.Add("x")
	f.Fuzz(func(t *testing.T, s string) {})
}
`,
	} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o750); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, name), text)
	}
	env := []string{"GOWORK=off", "GOFLAGS=", "GOTOOLCHAIN=local"}

	code, out := command(t, dir, env, "bash", script, "200x", "./...")
	if code != 1 {
		t.Errorf("exit status %d with a failing target, want 1", code)
	}
	for _, want := range []string{
		"==> fuzzdemo/a FuzzFails (200x)",
		"==> fuzzdemo/a FuzzPassesA (200x)", // after the failure, the same package
		"==> fuzzdemo/b FuzzPassesB (200x)", // and the next ones
		"fuzz: ran 3 target(s) for 200x each",
		"fuzz: 1 failed:\n  fuzzdemo/a FuzzFails\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "is not a count of executions") {
		t.Errorf("a count was taken for a duration:\n%s", out)
	}

	code, out = command(t, dir, env, "bash", script, "100x", "./b/...")
	if code != 0 || !strings.Contains(out, "fuzz: ran 1 target(s)") {
		t.Errorf("passing targets: exit %d, want 0:\n%s", code, out)
	}

	// A duration works, with a warning.
	code, out = command(t, dir, env, "bash", script, "1s", "./b/...")
	if code != 0 || !strings.Contains(out, "FUZZTIME=1s is not a count of executions") {
		t.Errorf("a duration: exit %d, want 0 and a warning:\n%s", code, out)
	}

	// No target at all is an error, not a silent success.
	writeFile(t, filepath.Join(dir, "c_test.go"), "package fuzzdemo\n\nimport \"testing\"\n\nfunc TestNothing(t *testing.T) {}\n")
	if code, out := command(t, dir, env, "bash", script, "10x", "."); code == 0 {
		t.Errorf("no fuzz target: exit 0:\n%s", out)
	}
}

// TestMakeLintWithoutTools: make lint before make tools says what to run,
// before spending time on gofmt and go vet.
func TestMakeLintWithoutTools(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed (.ci/run does without it)")
	}
	code, out := command(t, root, nil, "make", "lint", "TOOLS_BIN="+t.TempDir())
	if code == 0 || !strings.Contains(out, "not installed: run make tools") {
		t.Errorf("make lint without the tools: exit %d:\n%s", code, out)
	}
	if strings.Contains(out, "go vet") {
		t.Errorf("make lint ran go vet before saying the tools are missing:\n%s", out)
	}
}
