package proc

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Build runs "go build -o out pkg" in dir (a module's directory, so that
// the build works with or without the workspace), out made absolute first.
// The compiler's output goes to standard error.
func Build(ctx context.Context, dir, out, pkg string) error {
	abs, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", abs, pkg)
	cmd.Dir = dir
	cmd.Stdout = os.Stderr
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%w: go build %s (in %s): %w", ErrBuild, pkg, dir, err)
	}
	return nil
}
