// Package bench_test checks how the bench module and the service's module
// fit together: the bench must not change the service's build.
package bench_test

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// goCmd runs the go command in the service module's directory (the
// parent of this one) with extra environment variables.
func goCmd(t *testing.T, env []string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestServiceBuildIgnoresTheWorkspace checks that the service binary is
// built from the same module versions with the workspace (make build, go
// run) as without it (the Docker image, GOWORK=off): a bench dependency
// requiring a newer version of one of the service's would otherwise change
// the service's build.
func TestServiceBuildIgnoresTheWorkspace(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	list := []string{"list", "-deps", "-f", "{{with .Module}}{{.Path}} {{.Version}}{{end}}", "./cmd/event_dispatcher"}
	modules := func(env ...string) []string {
		var out []string
		for _, line := range strings.Split(goCmd(t, env, list...), "\n") {
			if line != "" && !slices.Contains(out, line) {
				out = append(out, line)
			}
		}
		slices.Sort(out)
		return out
	}
	alone, workspace := modules("GOWORK=off"), modules()
	if !slices.Equal(alone, workspace) {
		t.Fatalf("the service's modules differ\nalone (GOWORK=off):\n  %s\nin the workspace:\n  %s",
			strings.Join(alone, "\n  "), strings.Join(workspace, "\n  "))
	}
	for _, m := range alone {
		if strings.Contains(m, "gonum.org") || strings.Contains(m, "hdrhistogram") {
			t.Errorf("the service is built with the bench's %s", m)
		}
	}
}

// TestServiceModuleIsTidy checks that go mod tidy leaves the service's
// go.mod as it is: in particular it lists nothing only the bench needs.
func TestServiceModuleIsTidy(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	goCmd(t, []string{"GOWORK=off", "GOFLAGS=-mod=mod"}, "mod", "tidy", "-diff")
	gomod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	for _, bench := range []string{"gonum.org/v1/plot", "github.com/HdrHistogram/hdrhistogram-go"} {
		if strings.Contains(string(gomod), bench) {
			t.Errorf("the service's go.mod requires %s, which only the bench uses", bench)
		}
	}
}
