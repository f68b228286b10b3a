package opsdocs_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// kubernetesDir holds the Kubernetes manifests (deploy/kubernetes/README.md).
const kubernetesDir = "deploy/kubernetes"

// k8sObject is the part of a Kubernetes object these checks read.
type k8sObject struct {
	Data     map[string]string `yaml:"data"` // ConfigMap
	Metadata struct {
		Labels map[string]string `yaml:"labels"`
		Name   string            `yaml:"name"`
	} `yaml:"metadata"`
	Spec       k8sSpec `yaml:"spec"`
	APIVersion string  `yaml:"apiVersion"`
	Kind       string  `yaml:"kind"`
	file       string
}

type k8sSpec struct {
	Replicas *int `yaml:"replicas"`
	Selector struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	} `yaml:"selector"` // Deployment, PodDisruptionBudget
	ServiceSelector map[string]string `yaml:"-"`
	Template        struct {
		Metadata struct {
			Labels map[string]string `yaml:"labels"`
		} `yaml:"metadata"`
		Spec k8sPodSpec `yaml:"spec"`
	} `yaml:"template"`
	Ports          []k8sServicePort `yaml:"ports"` // Service
	MaxUnavailable yaml.Node        `yaml:"maxUnavailable"`
	MinAvailable   yaml.Node        `yaml:"minAvailable"`
}

type k8sServicePort struct {
	TargetPort yaml.Node `yaml:"targetPort"`
	Name       string    `yaml:"name"`
	Port       int       `yaml:"port"`
}

type k8sPodSpec struct {
	TerminationGracePeriodSeconds *int  `yaml:"terminationGracePeriodSeconds"`
	EnableServiceLinks            *bool `yaml:"enableServiceLinks"`
	SecurityContext               struct {
		RunAsNonRoot *bool `yaml:"runAsNonRoot"`
	} `yaml:"securityContext"`
	Containers []k8sContainer `yaml:"containers"`
}

type k8sContainer struct {
	ReadinessProbe *k8sProbe `yaml:"readinessProbe"`
	LivenessProbe  *k8sProbe `yaml:"livenessProbe"`
	StartupProbe   *k8sProbe `yaml:"startupProbe"`
	Lifecycle      struct {
		PreStop *struct {
			Sleep *struct {
				Seconds int `yaml:"seconds"`
			} `yaml:"sleep"`
		} `yaml:"preStop"`
	} `yaml:"lifecycle"`
	Resources struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	SecurityContext struct {
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
		Capabilities             struct {
			Drop []string `yaml:"drop"`
		} `yaml:"capabilities"`
	} `yaml:"securityContext"`
	Name    string   `yaml:"name"`
	Image   string   `yaml:"image"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	EnvFrom []struct {
		ConfigMapRef *struct {
			Name string `yaml:"name"`
		} `yaml:"configMapRef"`
		SecretRef *struct {
			Name string `yaml:"name"`
		} `yaml:"secretRef"`
	} `yaml:"envFrom"`
	Env []struct {
		ValueFrom *struct {
			ConfigMapKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"configMapKeyRef"`
			SecretKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
		Name  string `yaml:"name"`
		Value string `yaml:"value"`
	} `yaml:"env"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
}

type k8sProbe struct {
	HTTPGet *struct {
		Port yaml.Node `yaml:"port"`
		Path string    `yaml:"path"`
	} `yaml:"httpGet"`
	TimeoutSeconds int `yaml:"timeoutSeconds"`
}

// readManifests decodes every document of every *.yaml, *.yml and *.json
// file of dir: what kubectl apply -f dir applies.
func readManifests(t *testing.T, dir string) []k8sObject {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(root, dir))
	if err != nil {
		t.Fatal(err)
	}
	var out []k8sObject
	for _, e := range entries {
		if e.IsDir() || !slices.Contains([]string{".yaml", ".yml", ".json"}, filepath.Ext(e.Name())) {
			continue
		}
		dec := yaml.NewDecoder(bytes.NewReader(readFile(t, filepath.Join(dir, e.Name()))))
		for {
			var node yaml.Node
			if err := dec.Decode(&node); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", e.Name(), err)
			}
			var obj k8sObject
			if err := node.Decode(&obj); err != nil {
				t.Fatalf("%s: %v", e.Name(), err)
			}
			if obj.Kind == "Service" {
				// A Service's selector is a plain map, not matchLabels.
				var svc struct {
					Spec struct {
						Selector map[string]string `yaml:"selector"`
					} `yaml:"spec"`
				}
				if err := node.Decode(&svc); err != nil {
					t.Fatalf("%s: %v", e.Name(), err)
				}
				obj.Spec.ServiceSelector = svc.Spec.Selector
			}
			if obj.APIVersion == "" || obj.Kind == "" || obj.Metadata.Name == "" {
				t.Errorf("%s: a document without apiVersion, kind or metadata.name: kubectl apply -f would fail on it", e.Name())
			}
			obj.file = e.Name()
			out = append(out, obj)
		}
	}
	return out
}

// TestKubernetesManifests checks deploy/kubernetes: what kubectl apply -k
// and -f would apply, that the settings are the binary's, that the probes
// reach real endpoints on the container's port, that the Service and the
// budget select the pods, and that the grace period covers the shutdown.
func TestKubernetesManifests(t *testing.T) {
	t.Parallel()
	objects := readManifests(t, kubernetesDir)
	byKind := map[string][]k8sObject{}
	files := map[string]bool{}
	for _, o := range objects {
		byKind[o.Kind] = append(byKind[o.Kind], o)
		files[o.file] = true
	}

	t.Run("kustomization lists every manifest", func(t *testing.T) {
		var k struct {
			APIVersion string   `yaml:"apiVersion"`
			Kind       string   `yaml:"kind"`
			Resources  []string `yaml:"resources"`
		}
		if err := yaml.Unmarshal(readFile(t, filepath.Join(kubernetesDir, "Kustomization")), &k); err != nil {
			t.Fatal(err)
		}
		if k.Kind != "Kustomization" || !strings.HasPrefix(k.APIVersion, "kustomize.config.k8s.io/") {
			t.Errorf("Kustomization: kind %q, apiVersion %q", k.Kind, k.APIVersion)
		}
		for _, name := range []string{"kustomization.yaml", "kustomization.yml"} {
			if _, err := os.Stat(filepath.Join(root, kubernetesDir, name)); err == nil {
				t.Errorf("%s: kubectl apply -f on the folder would try to apply it; name it Kustomization", name)
			}
		}
		if got, want := slices.Sorted(slices.Values(k.Resources)), slices.Sorted(maps.Keys(files)); !slices.Equal(got, want) {
			t.Errorf("Kustomization resources %q, the folder's manifests %q: -k and -f would apply different things", got, want)
		}
	})

	deployments := byKind["Deployment"]
	if len(deployments) != 1 {
		t.Fatalf("%d Deployments, want 1", len(deployments))
	}
	d := deployments[0]
	pod := d.Spec.Template.Spec
	podLabels := d.Spec.Template.Metadata.Labels
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 3 {
		t.Errorf("Deployment replicas %v, want 3", d.Spec.Replicas)
	}
	if !selects(d.Spec.Selector.MatchLabels, podLabels) {
		t.Errorf("Deployment selector %v does not select its pods %v", d.Spec.Selector.MatchLabels, podLabels)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want the dispatcher alone", len(pod.Containers))
	}
	c := pod.Containers[0]
	if len(c.Command) > 0 {
		t.Errorf("container command %q: the image's entry point is the binary; pass flags as args", c.Command)
	}
	env := containerEnv(t, c, byKind["ConfigMap"])
	checkSettings(t, kubernetesDir+"/"+d.file, c.Args, env)
	port := listenPort(c.Args, env)

	t.Run("probes", func(t *testing.T) {
		addr := startService(t)
		for _, p := range []struct {
			probe *k8sProbe
			kind  string
			path  string
		}{{c.LivenessProbe, "liveness", "/health/live"}, {c.ReadinessProbe, "readiness", "/health/ready"}, {c.StartupProbe, "startup", ""}} {
			if p.probe == nil {
				if p.path != "" {
					t.Errorf("no %s probe", p.kind)
				}
				continue
			}
			if p.probe.HTTPGet == nil {
				t.Errorf("%s probe: want httpGet (the image has no shell for exec)", p.kind)
				continue
			}
			path := p.probe.HTTPGet.Path
			if p.path != "" && path != p.path {
				t.Errorf("%s probe on %s, want %s", p.kind, path, p.path)
			}
			if got := probePort(p.probe.HTTPGet.Port, c); got != port {
				t.Errorf("%s probe on port %q, the service listens on %s", p.kind, got, port)
			}
			if p.probe.TimeoutSeconds < 1 {
				t.Errorf("%s probe: timeoutSeconds %d", p.kind, p.probe.TimeoutSeconds)
			}
			if code := get(t, "http://"+addr+path); code < 200 || code >= 400 {
				t.Errorf("%s probe: GET %s answers %d on the service; the kubelet wants 200-399", p.kind, path, code)
			}
		}
		if code := get(t, "http://"+addr+"/health/not-an-endpoint"); code >= 200 && code < 400 {
			t.Errorf("GET of a path the service lacks answers %d: the probe check could not fail", code)
		}
	})

	t.Run("graceful shutdown", func(t *testing.T) {
		grace := pod.TerminationGracePeriodSeconds
		if grace == nil {
			t.Fatal("no terminationGracePeriodSeconds (the default, 30 s, would do, but say it)")
		}
		shutdown := 10 * time.Second // the binary's default
		if v := env["DISPATCHER_SHUTDOWN_TIMEOUT"]; v != "" {
			var err error
			if shutdown, err = time.ParseDuration(v); err != nil {
				t.Fatal(err)
			}
		}
		if i := slices.Index(c.Args, "-shutdown-timeout"); i >= 0 && i+1 < len(c.Args) {
			shutdown, _ = time.ParseDuration(c.Args[i+1])
		}
		var pause time.Duration
		if ps := c.Lifecycle.PreStop; ps != nil && ps.Sleep != nil {
			pause = time.Duration(ps.Sleep.Seconds) * time.Second
		}
		if time.Duration(*grace)*time.Second <= pause+shutdown {
			t.Errorf("terminationGracePeriodSeconds %d: not above the preStop pause %v plus the shutdown timeout %v", *grace, pause, shutdown)
		}
	})

	t.Run("resources and security", func(t *testing.T) {
		for _, r := range []string{"cpu", "memory"} {
			if c.Resources.Requests[r] == "" || c.Resources.Limits[r] == "" {
				t.Errorf("%s: requests %v, limits %v: want both", r, c.Resources.Requests, c.Resources.Limits)
			}
		}
		sc := c.SecurityContext
		if !isTrue(pod.SecurityContext.RunAsNonRoot) || !isTrue(sc.ReadOnlyRootFilesystem) ||
			sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || !slices.Contains(sc.Capabilities.Drop, "ALL") {
			t.Errorf("security: runAsNonRoot %s, readOnlyRootFilesystem %s, allowPrivilegeEscalation %s, drop %v; "+
				"want true, true, false, [ALL]", show(pod.SecurityContext.RunAsNonRoot), show(sc.ReadOnlyRootFilesystem),
				show(sc.AllowPrivilegeEscalation), sc.Capabilities.Drop)
		}
		// Service links would set DISPATCHER_PORT=tcp://... for a Service
		// named "dispatcher", which the binary reads as -port.
		if pod.EnableServiceLinks == nil || *pod.EnableServiceLinks {
			t.Error("enableServiceLinks is not false")
		}
	})

	t.Run("service and disruption budget select the pods", func(t *testing.T) {
		services := byKind["Service"]
		if len(services) != 1 {
			t.Fatalf("%d Services, want 1", len(services))
		}
		svc := services[0]
		if !selects(svc.Spec.ServiceSelector, podLabels) {
			t.Errorf("Service selector %v does not select the pods %v", svc.Spec.ServiceSelector, podLabels)
		}
		if len(svc.Spec.Ports) == 0 {
			t.Error("the Service has no port")
		}
		for _, p := range svc.Spec.Ports {
			if got := probePort(p.TargetPort, c); got != port {
				t.Errorf("Service port %d targets %q, the service listens on %s", p.Port, got, port)
			}
		}
		pdbs := byKind["PodDisruptionBudget"]
		if len(pdbs) != 1 {
			t.Fatalf("%d PodDisruptionBudgets, want 1", len(pdbs))
		}
		pdb := pdbs[0]
		if !selects(pdb.Spec.Selector.MatchLabels, podLabels) {
			t.Errorf("PodDisruptionBudget selector %v does not select the pods %v", pdb.Spec.Selector.MatchLabels, podLabels)
		}
		if (pdb.Spec.MaxUnavailable.Kind == 0) == (pdb.Spec.MinAvailable.Kind == 0) {
			t.Error("PodDisruptionBudget: want maxUnavailable or minAvailable")
		}
	})
}

// containerEnv returns the container's environment as the kubelet sets it:
// the ConfigMaps of envFrom (from this folder), then env, whose values from
// Secrets are stand-ins (the manifests hold no secret).
func containerEnv(t *testing.T, c k8sContainer, configMaps []k8sObject) map[string]string {
	t.Helper()
	data := func(name string) map[string]string {
		for _, cm := range configMaps {
			if cm.Metadata.Name == name {
				return cm.Data
			}
		}
		t.Errorf("container %s reads ConfigMap %q, which is not in %s", c.Name, name, kubernetesDir)
		return nil
	}
	env := map[string]string{}
	for _, from := range c.EnvFrom {
		switch {
		case from.ConfigMapRef != nil:
			maps.Copy(env, data(from.ConfigMapRef.Name))
		case from.SecretRef != nil:
			t.Errorf("envFrom Secret %q: its variables cannot be checked; name them in env", from.SecretRef.Name)
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.ConfigMapKeyRef != nil:
			ref := e.ValueFrom.ConfigMapKeyRef
			env[e.Name] = data(ref.Name)[ref.Key]
		case e.ValueFrom.SecretKeyRef != nil:
			env[e.Name] = "secret-" + e.ValueFrom.SecretKeyRef.Key
		default:
			env[e.Name] = "1"
		}
	}
	return env
}

// probePort resolves a probe's or a Service's port, a number or the name of
// one of the container's ports, to a number.
func probePort(port yaml.Node, c k8sContainer) string {
	if _, err := strconv.Atoi(port.Value); err == nil {
		return port.Value
	}
	for _, p := range c.Ports {
		if p.Name == port.Value {
			return strconv.Itoa(p.ContainerPort)
		}
	}
	return fmt.Sprintf("(no container port named %q)", port.Value)
}

// selects reports whether a label selector (matchLabels) picks labels.
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func isTrue(b *bool) bool { return b != nil && *b }

// show prints an optional boolean.
func show(b *bool) string {
	if b == nil {
		return "(unset)"
	}
	return strconv.FormatBool(*b)
}

// get returns the status of a GET of url.
func get(t *testing.T, url string) int {
	t.Helper()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		t.Errorf("GET %s: %v", url, err)
		return 0
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}
