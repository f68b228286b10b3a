package opsdocs_test

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/app"
)

// instruction is one Dockerfile instruction, continuation lines joined, with
// the comment lines just above it.
type instruction struct {
	Cmd      string // FROM, RUN, ... in capitals
	Args     string
	Comments []string
	Line     int
}

// parseDockerfile splits a Dockerfile into instructions (without the parser
// directives, which are comments too).
func parseDockerfile(text string) []instruction {
	var out []instruction
	var comments []string
	var cur *instruction
	for i, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") {
			if cur == nil {
				comments = append(comments, strings.TrimSpace(strings.TrimPrefix(trimmed, "#")))
			}
			continue // comments inside a continued instruction are dropped, as Docker does
		}
		if trimmed == "" {
			if cur == nil {
				comments = nil
			}
			continue
		}
		if cur == nil {
			cmd, args, _ := strings.Cut(trimmed, " ")
			cur = &instruction{Cmd: strings.ToUpper(cmd), Args: strings.TrimSpace(args), Comments: comments, Line: i + 1}
			comments = nil
		} else {
			cur.Args += " " + trimmed
		}
		if strings.HasSuffix(cur.Args, `\`) {
			cur.Args = strings.TrimSpace(strings.TrimSuffix(cur.Args, `\`))
			continue
		}
		out = append(out, *cur)
		cur = nil
	}
	return out
}

// pinnedImage is name:tag@sha256:<64 hex digits>.
var pinnedImage = regexp.MustCompile(`^([a-z0-9./-]+):([A-Za-z0-9._-]+)@sha256:[0-9a-f]{64}$`)

// TestDockerfile checks the image's recipe: base images pinned by digest
// with their tag kept, the version and the commit embedded, and a health
// check the binary runs, on an endpoint of the service, without a shell.
func TestDockerfile(t *testing.T) {
	t.Parallel()
	ins := parseDockerfile(string(readFile(t, "Dockerfile")))
	byCmd := map[string][]instruction{}
	for _, in := range ins {
		byCmd[in.Cmd] = append(byCmd[in.Cmd], in)
	}

	t.Run("base images pinned by digest", func(t *testing.T) {
		stages := map[string]bool{}
		froms := byCmd["FROM"]
		if len(froms) < 2 {
			t.Fatalf("%d FROM instructions, want a build stage and a runtime stage", len(froms))
		}
		for _, from := range froms {
			fields := strings.Fields(from.Args)
			if len(fields) > 0 && strings.HasPrefix(fields[0], "--platform=") {
				fields = fields[1:]
			}
			if len(fields) == 0 {
				t.Errorf("line %d: FROM without an image", from.Line)
				continue
			}
			image := fields[0]
			if len(fields) == 3 && strings.EqualFold(fields[1], "AS") {
				stages[fields[2]] = true
			}
			if stages[image] {
				continue // a previous stage
			}
			m := pinnedImage.FindStringSubmatch(image)
			if m == nil {
				t.Errorf("line %d: FROM %s: want name:tag@sha256:<digest>", from.Line, image)
				continue
			}
			if !strings.Contains(strings.Join(from.Comments, "\n"), m[1]+":"+m[2]) {
				t.Errorf("line %d: no comment above FROM %s names its tag %s:%s", from.Line, image, m[1], m[2])
			}
			if m[1] == "golang" {
				checkGoImage(t, m[2])
			}
		}
	})

	t.Run("version and commit embedded", func(t *testing.T) {
		var build string
		for _, run := range byCmd["RUN"] {
			if strings.Contains(run.Args, "go build") {
				build = run.Args
			}
		}
		module := modulePath(t)
		// Compile-time references: the variables the flags set exist.
		_, _ = app.Version, app.Commit
		for _, want := range []string{
			"-X " + module + "/internal/app.Version=${VERSION}",
			"-X " + module + "/internal/app.Commit=${COMMIT}",
			"./cmd/event_dispatcher",
		} {
			if !strings.Contains(build, want) {
				t.Errorf("the go build lacks %q: %s", want, build)
			}
		}
		args := map[string]bool{}
		for _, arg := range byCmd["ARG"] {
			name, _, _ := strings.Cut(arg.Args, "=")
			args[name] = true
		}
		if !args["VERSION"] || !args["COMMIT"] {
			t.Errorf("build arguments %v: want VERSION and COMMIT", args)
		}
		makefile := string(readFile(t, "Makefile"))
		docker := regexp.MustCompile(`(?m)^\tdocker build .*$`).FindString(makefile)
		for _, want := range []string{`--build-arg VERSION="$(VERSION)"`, `--build-arg COMMIT="$(COMMIT)"`} {
			if !strings.Contains(docker, want) {
				t.Errorf("make docker (%q) does not pass %s", docker, want)
			}
		}
		release := string(readFile(t, ".github/workflows/release.yml"))
		if !regexp.MustCompile(`(?m)^\s+COMMIT=\$\{\{ [^}]+ \}\}$`).MatchString(release) {
			t.Error("the release workflow's image build passes no COMMIT build argument")
		}
	})

	t.Run("health check", func(t *testing.T) {
		entry := byCmd["ENTRYPOINT"]
		hcs := byCmd["HEALTHCHECK"]
		if len(entry) != 1 || len(hcs) != 1 {
			t.Fatalf("%d ENTRYPOINT and %d HEALTHCHECK instructions, want one of each", len(entry), len(hcs))
		}
		var binary []string
		if err := json.Unmarshal([]byte(entry[0].Args), &binary); err != nil || len(binary) != 1 || binary[0] != imageBinary {
			t.Fatalf("ENTRYPOINT %s: want [%q] (%v)", entry[0].Args, imageBinary, err)
		}
		copied := false
		for _, cp := range byCmd["COPY"] {
			copied = copied || strings.HasSuffix(cp.Args, " "+imageBinary)
		}
		if !copied {
			t.Errorf("no COPY puts the binary at %s", imageBinary)
		}
		hc := hcs[0].Args
		options, cmd, ok := strings.Cut(hc, "CMD ")
		if !ok {
			t.Fatalf("HEALTHCHECK %s: want CMD [...]", hc)
		}
		var argv []string
		if err := json.Unmarshal([]byte(cmd), &argv); err != nil {
			t.Fatalf("HEALTHCHECK CMD %s: want the exec form, a JSON array: the image has no shell (%v)", cmd, err)
		}
		if m := regexp.MustCompile(`--timeout=(\S+)`).FindStringSubmatch(options); m != nil {
			if d, err := time.ParseDuration(m[1]); err != nil || d <= 3*time.Second {
				t.Errorf("HEALTHCHECK --timeout=%s: want more than the check's own 3 s", m[1])
			}
		}
		var exposed string
		if expose := byCmd["EXPOSE"]; len(expose) == 1 {
			exposed = strings.TrimSuffix(expose[0].Args, "/tcp")
		}
		if exposed != defaultPort {
			t.Errorf("EXPOSE %q, the binary listens on %s by default", exposed, defaultPort)
		}
		checkHealthcheckCommand(t, "Dockerfile HEALTHCHECK", argv, binary[0], defaultPort, startService(t))
	})
}

// checkGoImage checks that the build image's Go can build the module: the
// official image sets GOTOOLCHAIN=local, so it never fetches a newer one.
func checkGoImage(t *testing.T, tag string) {
	t.Helper()
	want := regexp.MustCompile(`(?m)^go (\d+)\.(\d+)(?:\.(\d+))?$`).FindStringSubmatch(string(readFile(t, "go.mod")))
	got := regexp.MustCompile(`^(\d+)\.(\d+)(?:\.(\d+))?`).FindStringSubmatch(tag)
	if want == nil || got == nil {
		t.Errorf("golang:%s: cannot compare with go.mod's go line", tag)
		return
	}
	if compareVersions(got[1:], want[1:]) < 0 {
		t.Errorf("golang:%s is older than go.mod's go %s.%s.%s", tag, want[1], want[2], want[3])
	}
}

func compareVersions(a, b []string) int {
	for i := range a {
		x, y := atoi(a[i]), atoi(b[i])
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

// atoi is strconv.Atoi for what the version patterns matched ("" is 0).
func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// modulePath is go.mod's module path.
func modulePath(t *testing.T) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^module (\S+)$`).FindStringSubmatch(string(readFile(t, "go.mod")))
	if m == nil {
		t.Fatal("go.mod has no module line")
	}
	return m[1]
}
