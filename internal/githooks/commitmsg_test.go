package githooks

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// repoRoot walks up from the test's working directory to the directory that
// holds go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test's working directory")
		}
		dir = parent
	}
}

// hookEnv is the environment for running a hook: the test's own, without the
// GIT_* variables of an enclosing git command, and with no global or system
// git configuration, so that a developer's settings cannot change the result.
func hookEnv(extra ...string) []string {
	env := make([]string, 0, len(os.Environ())+2+len(extra))
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GIT_") {
			env = append(env, kv)
		}
	}
	env = append(env, "GIT_CONFIG_GLOBAL="+os.DevNull, "GIT_CONFIG_NOSYSTEM=1")
	return append(env, extra...)
}

// run runs name with args in dir and returns its exit code and combined output.
func run(t *testing.T, dir string, env []string, name string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), name, args...)
	cmd.Dir = dir
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String()
	case errors.As(err, &exitErr):
		return exitErr.ExitCode(), out.String()
	default:
		t.Fatalf("running %s: %v", name, err)
		return -1, ""
	}
}

func TestHooksAreExecutable(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	for _, hook := range []string{"commit-msg", "pre-commit"} {
		t.Run(hook, func(t *testing.T) {
			t.Parallel()
			info, err := os.Stat(filepath.Join(root, ".githooks", hook))
			if err != nil {
				t.Fatal(err)
			}
			if info.Mode().Perm()&0o111 == 0 {
				t.Errorf(".githooks/%s is not executable (mode %v)", hook, info.Mode())
			}
		})
	}
}

func TestCommitMsg(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not found")
	}
	hook := filepath.Join(repoRoot(t), ".githooks", "commit-msg")

	tests := []struct {
		name string
		msg  string
		env  []string // extra environment, e.g. git configuration
		ok   bool
	}{
		// Accepted.
		{name: "type and subject", msg: "feat: accept events over HTTP POST\n", ok: true},
		{name: "scope", msg: "fix(fanout): wake idle subscribers on close\n", ok: true},
		{name: "path scope", msg: "perf(pkg/server): reuse the SSE write buffer\n", ok: true},
		{name: "bang", msg: "refactor!: rename the -addr flag to -listen\n", ok: true},
		{name: "scope and bang", msg: "feat(api)!: require a JSON content type\n", ok: true},
		{name: "breaking change footer", msg: "feat(api): version the event schema\n\nEvents now carry a schema field.\n\nBREAKING CHANGE: events without a schema field are rejected.\n", ok: true},
		{name: "multi-line body", msg: "fix(server): close the SSE stream on shutdown\n\nThe stream stayed open until the client left, which held the\nshutdown for the whole grace period.\n\nRefs: #12\n", ok: true},
		{name: "no trailing newline", msg: "docs: describe the heartbeat flag", ok: true},
		{name: "CRLF line endings", msg: "test: cover slow subscribers\r\n\r\nBody.\r\n", ok: true},
		{name: "git template comments first", msg: "\n# Please enter the commit message for your changes.\n#\nchore: update tooling\n# On branch main\n", ok: true},
		{name: "scissors and diff below", msg: "style: gofmt\n# ------------------------ >8 ------------------------\n# Do not modify or remove the line above.\ndiff --git a/x.go b/x.go\n", ok: true},
		{name: "merge commit", msg: "Merge branch 'feature/sse' into main\n", ok: true},
		{name: "merge pull request", msg: "Merge pull request #42 from SRGSSR/feature/sse\n\nfeat: stream events\n", ok: true},
		{name: "git revert", msg: "Revert \"feat(fanout): shard by subscriber id\"\n\nThis reverts commit 0123456789abcdef.\n", ok: true},
		{name: "revert type", msg: "revert: feat(fanout): shard by subscriber id\n\nRefs: 0123456\n", ok: true},
		{name: "fixup", msg: "fixup! feat: accept events over HTTP POST\n", ok: true},
		{name: "semantic-release commit", msg: "chore(release): 1.2.0 [skip ci]\n\n## 1.2.0 (2026-01-01)\n\n### Features\n\n* stream events\n", ok: true},
		{name: "type feat", msg: "feat: subject\n", ok: true},
		{name: "type fix", msg: "fix: subject\n", ok: true},
		{name: "type perf", msg: "perf: subject\n", ok: true},
		{name: "type test", msg: "test: subject\n", ok: true},
		{name: "type docs", msg: "docs: subject\n", ok: true},
		{name: "type refactor", msg: "refactor: subject\n", ok: true},
		{name: "type build", msg: "build: subject\n", ok: true},
		{name: "type ci", msg: "ci: subject\n", ok: true},
		{name: "type chore", msg: "chore: subject\n", ok: true},
		{name: "type style", msg: "style: subject\n", ok: true},
		{name: "type revert", msg: "revert: subject\n", ok: true},
		{name: "custom comment char", msg: "; comment\nci: cache the module download\n", env: []string{"GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=core.commentChar", "GIT_CONFIG_VALUE_0=;"}, ok: true},

		// Rejected.
		{name: "empty", msg: ""},
		{name: "blank lines only", msg: "\n  \n\t\n"},
		{name: "comments only", msg: "# Please enter the commit message for your changes.\n#\n"},
		{name: "no type", msg: "update the readme\n"},
		{name: "unknown type", msg: "feature: accept events\n"},
		{name: "wip type", msg: "wip: half done\n"},
		{name: "upper-case type", msg: "Feat: accept events\n"},
		{name: "missing colon", msg: "feat accept events\n"},
		{name: "missing space after colon", msg: "feat:accept events\n"},
		{name: "colon only", msg: "feat:\n"},
		{name: "empty subject", msg: "feat: \n"},
		{name: "empty subject with scope and bang", msg: "fix(server)!:   \n\nBody.\n"},
		{name: "two spaces after colon", msg: "fix:  double space\n"},
		{name: "space before scope", msg: "fix (server): close the stream\n"},
		{name: "space before colon", msg: "fix(server) : close the stream\n"},
		{name: "empty scope", msg: "fix(): close the stream\n"},
		{name: "scope with space", msg: "fix(sse server): close the stream\n"},
		{name: "bang before scope", msg: "feat!(api): require JSON\n"},
		{name: "valid line only in body", msg: "fixed things\n\nfeat: accept events\n"},
		{name: "comment char is configured", msg: "# not a comment any more\nfeat: accept events\n", env: []string{"GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=core.commentChar", "GIT_CONFIG_VALUE_0=;"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			file := filepath.Join(dir, "COMMIT_EDITMSG")
			if err := os.WriteFile(file, []byte(tt.msg), 0o600); err != nil {
				t.Fatal(err)
			}
			code, out := run(t, dir, hookEnv(tt.env...), hook, file)
			want := 1
			if tt.ok {
				want = 0
			}
			if code != want {
				t.Errorf("commit-msg exit code = %d, want %d for message %q; output:\n%s", code, want, tt.msg, out)
			}
		})
	}
}

func TestCommitMsgUsage(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not found")
	}
	hook := filepath.Join(repoRoot(t), ".githooks", "commit-msg")
	dir := t.TempDir()
	for name, args := range map[string][]string{
		"no argument":  nil,
		"missing file": {filepath.Join(dir, "absent")},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if code, out := run(t, dir, hookEnv(), hook, args...); code != 2 {
				t.Errorf("exit code = %d, want 2; output:\n%s", code, out)
			}
		})
	}
}

func TestPreCommit(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"bash", "git", "go", "gofmt"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found", tool)
		}
	}
	hook := filepath.Join(repoRoot(t), ".githooks", "pre-commit")

	const (
		formatted   = "package hooktest\n\n// F is formatted.\nfunc F() int { return 1 }\n"
		unformatted = "package hooktest\n\n// F is not formatted.\nfunc F( ) int {return 1}\n"
		vetFails    = "package hooktest\n\nimport \"fmt\"\n\n// F fails go vet.\nfunc F() { fmt.Printf(\"%d\\n\", \"not a number\") }\n"
		syntaxError = "package hooktest\n\nfunc F( {\n"
	)
	tests := []struct {
		name     string
		staged   string // content of f.go in the index
		worktree string // content of f.go in the work tree afterwards; "" keeps staged
		ok       bool
	}{
		{name: "formatted", staged: formatted, ok: true},
		{name: "unformatted", staged: unformatted},
		{name: "unformatted staged, formatted in work tree", staged: unformatted, worktree: formatted},
		{name: "formatted staged, unformatted in work tree", staged: formatted, worktree: unformatted, ok: true},
		{name: "go vet fails", staged: vetFails},
		{name: "syntax error", staged: syntaxError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			env := hookEnv("GOWORK=off", "GOFLAGS=", "GOTOOLCHAIN=local", "GOPROXY=off")
			write := func(name, content string) {
				t.Helper()
				if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			git := func(args ...string) {
				t.Helper()
				if code, out := run(t, dir, env, "git", args...); code != 0 {
					t.Fatalf("git %s: exit %d\n%s", strings.Join(args, " "), code, out)
				}
			}
			git("init", "-q")
			write("go.mod", "module example.com/hooktest\n\ngo 1.22\n")
			write("f.go", tt.staged)
			git("add", "go.mod", "f.go")
			if tt.worktree != "" {
				write("f.go", tt.worktree)
			}

			code, out := run(t, dir, env, hook)
			want := 1
			if tt.ok {
				want = 0
			}
			if code != want {
				t.Errorf("pre-commit exit code = %d, want %d; output:\n%s", code, want, out)
			}
		})
	}
}
