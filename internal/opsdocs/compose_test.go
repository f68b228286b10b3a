package opsdocs_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// composeFile is the example deployment: three NATS nodes, three
// dispatchers, a reverse proxy. There is no Docker engine in CI; this test
// checks what can be checked without one: that the file parses and that the
// pieces the README promises fit together.
const composeFile = "compose.yaml"

// imageBinary is where the image (Dockerfile) puts the binary.
const imageBinary = "/usr/local/bin/event_dispatcher"

type compose struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Build       string            `yaml:"build"`
		Command     []string          `yaml:"command"`
		Environment map[string]string `yaml:"environment"`
		Volumes     []string          `yaml:"volumes"`
		Ports       []string          `yaml:"ports"`
		Networks    yaml.Node         `yaml:"networks"`
		Healthcheck *struct {
			Test    []string `yaml:"test"`
			Timeout string   `yaml:"timeout"`
			Disable bool     `yaml:"disable"`
		} `yaml:"healthcheck"`
	} `yaml:"services"`
}

func TestComposeDeployment(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join(root, composeFile))
	if err != nil {
		t.Fatal(err)
	}
	var c compose
	if err := yaml.Unmarshal(data, &c); err != nil {
		t.Fatalf("%s: %v", composeFile, err)
	}
	nats := []string{"nats-1", "nats-2", "nats-3"}
	for _, name := range nats {
		s, ok := c.Services[name]
		if !ok {
			t.Fatalf("no service %s", name)
		}
		args := strings.Join(s.Command, " ")
		for _, want := range []string{"-js", "-cluster_name pillarbox", "-server_name " + name, "-sd /data"} {
			if !strings.Contains(args, want) {
				t.Errorf("%s: command lacks %q: %s", name, want, args)
			}
		}
		for _, other := range nats {
			if other != name && !strings.Contains(args, "nats://"+other+":6222") {
				t.Errorf("%s: no route to %s: %s", name, other, args)
			}
		}
	}
	var proxyIP string
	proxy, ok := c.Services["proxy"]
	if !ok {
		t.Fatal("no proxy service")
	}
	var networks map[string]struct {
		IP string `yaml:"ipv4_address"`
	}
	if err := proxy.Networks.Decode(&networks); err != nil || networks["internal"].IP == "" {
		t.Fatalf("the proxy has no fixed address (%v)", err)
	}
	proxyIP = networks["internal"].IP
	addr := startService(t)
	if !slices.Contains(proxy.Volumes, "./deploy/Caddyfile:/etc/caddy/Caddyfile:ro") {
		t.Errorf("the proxy does not mount deploy/Caddyfile: %v", proxy.Volumes)
	}
	for _, name := range []string{"dispatcher-1", "dispatcher-2", "dispatcher-3"} {
		s, ok := c.Services[name]
		if !ok {
			t.Fatalf("no service %s", name)
		}
		env := s.Environment
		for _, n := range nats {
			if !strings.Contains(env["DISPATCHER_NATS_URL"], "nats://"+n+":4222") {
				t.Errorf("%s: DISPATCHER_NATS_URL %q lacks %s", name, env["DISPATCHER_NATS_URL"], n)
			}
		}
		if env["DISPATCHER_NATS_REPLICAS"] != "3" || env["DISPATCHER_NATS_STORAGE"] != "file" {
			t.Errorf("%s: not a replicated file stream: %v", name, env)
		}
		if env["DISPATCHER_TRUSTED_PROXIES"] != proxyIP {
			t.Errorf("%s: trusts %q, the proxy is %s", name, env["DISPATCHER_TRUSTED_PROXIES"], proxyIP)
		}
		// The image's entry point is the binary: command: is its flags.
		checkSettings(t, composeFile+": "+name, s.Command, env)
		hc := s.Healthcheck
		if hc == nil || hc.Disable || len(hc.Test) == 0 || hc.Test[0] != "CMD" {
			t.Errorf("%s: healthcheck %+v: want test: [\"CMD\", ...] (exec form: the image has no shell)", name, hc)
			continue
		}
		if d, err := time.ParseDuration(hc.Timeout); err != nil || d <= 3*time.Second {
			t.Errorf("%s: healthcheck timeout %q: want more than the check's own 3 s", name, hc.Timeout)
		}
		checkHealthcheckCommand(t, composeFile+": "+name+" healthcheck", hc.Test[1:], imageBinary,
			listenPort(s.Command, env), addr)
	}
	caddy, err := os.ReadFile(filepath.Join(root, "deploy", "Caddyfile"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(caddy)
	for _, want := range []string{"dispatcher-1:8080 dispatcher-2:8080 dispatcher-3:8080", "flush_interval -1",
		"health_uri /health/ready", "read_timeout 0", "write_timeout 0"} {
		if !strings.Contains(text, want) {
			t.Errorf("Caddyfile lacks %q", want)
		}
	}
	for _, line := range strings.Split(text, "\n") {
		if fields := strings.Fields(line); len(fields) > 0 && fields[0] == "encode" {
			t.Errorf("Caddyfile compresses responses (%q): an event stream must not be", line)
		}
	}
}
