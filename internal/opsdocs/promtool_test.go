package opsdocs_test

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/opsdocs"
)

// TestPromtoolCheckRules runs Prometheus's own checker on the rules when
// promtool is installed (Debian: apt-get install prometheus); the other
// tests of this package check the same file without it.
func TestPromtoolCheckRules(t *testing.T) {
	t.Parallel()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed")
	}
	out, err := exec.Command(promtool, "check", "rules", filepath.Join(root, opsdocs.AlertsFile)).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}
