// Package kubernetes holds the example manifests of a relay cluster
// (README.md here); this test parses them and checks what the cluster
// needs of them, in CI with every `go test ./...`.
package kubernetes

import (
	"bytes"
	"errors"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// The parts of the Kubernetes objects the checks read.
type object struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Spec struct {
		Ports []struct {
			Port int `yaml:"port"`
		} `yaml:"ports"`
		Template struct {
			Spec podSpec `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type podSpec struct {
	HostNetwork                   bool        `yaml:"hostNetwork"`
	DNSPolicy                     string      `yaml:"dnsPolicy"`
	TerminationGracePeriodSeconds *int        `yaml:"terminationGracePeriodSeconds"`
	Containers                    []container `yaml:"containers"`
}

type container struct {
	Name string `yaml:"name"`
	Env  []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			FieldRef *struct {
				FieldPath string `yaml:"fieldPath"`
			} `yaml:"fieldRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	Ports []struct {
		ContainerPort int    `yaml:"containerPort"`
		HostPort      int    `yaml:"hostPort"`
		Protocol      string `yaml:"protocol"`
	} `yaml:"ports"`
	ReadinessProbe *struct {
		HTTPGet *struct {
			Path string `yaml:"path"`
			Port int    `yaml:"port"`
		} `yaml:"httpGet"`
	} `yaml:"readinessProbe"`
}

func (c container) env(name string) (string, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value, true
		}
	}
	return "", false
}

func (c container) fieldRef(name string) string {
	for _, e := range c.Env {
		if e.Name == name && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			return e.ValueFrom.FieldRef.FieldPath
		}
	}
	return ""
}

// load parses every document of every manifest here.
func load(t *testing.T) []object {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	var out []object
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for {
			var o object
			err := dec.Decode(&o)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if o.Kind == "" || o.Metadata.Name == "" {
				t.Fatalf("%s: a document without kind or metadata.name", f)
			}
			out = append(out, o)
		}
	}
	return out
}

func find(objs []object, kind, name string) *object {
	for i := range objs {
		if objs[i].Kind == kind && objs[i].Metadata.Name == name {
			return &objs[i]
		}
	}
	return nil
}

func TestRelayStatefulSet(t *testing.T) {
	objs := load(t)
	sts := find(objs, "StatefulSet", "relay")
	if sts == nil {
		t.Fatal("no StatefulSet relay")
	}
	pod := sts.Spec.Template.Spec
	var relay *container
	for i := range pod.Containers {
		if pod.Containers[i].Name == "relay" {
			relay = &pod.Containers[i]
		}
	}
	if relay == nil {
		t.Fatal("the StatefulSet has no container relay")
	}
	env := func(name string) string {
		v, ok := relay.env(name)
		if !ok {
			t.Errorf("relay container: no %s", name)
		}
		return v
	}

	t.Run("media port per pod", func(t *testing.T) {
		udp := env("RELAY_UDP")
		udpOK := false
		for _, p := range relay.Ports {
			if p.Protocol == "UDP" && strings.HasSuffix(udp, ":"+strconv.Itoa(p.ContainerPort)) && (pod.HostNetwork || p.HostPort == p.ContainerPort) {
				udpOK = true
			}
		}
		if !udpOK {
			t.Errorf("the media UDP port %q is neither on the host network nor a hostPort of its own", udp)
		}
		if pod.HostNetwork && pod.DNSPolicy != "ClusterFirstWithHostNet" {
			t.Errorf("hostNetwork with dnsPolicy %q: the nats Service would not resolve; want ClusterFirstWithHostNet", pod.DNSPolicy)
		}
	})
	t.Run("readiness on /readyz", func(t *testing.T) {
		if relay.ReadinessProbe == nil || relay.ReadinessProbe.HTTPGet == nil || relay.ReadinessProbe.HTTPGet.Path != "/readyz" {
			t.Fatal("no readinessProbe httpGet /readyz")
		}
		if http := env("RELAY_HTTP"); !strings.HasSuffix(http, ":"+strconv.Itoa(relay.ReadinessProbe.HTTPGet.Port)) {
			t.Errorf("readiness probes port %d, the relay listens on %q", relay.ReadinessProbe.HTTPGet.Port, http)
		}
	})
	t.Run("grace above the drain", func(t *testing.T) {
		drain, err := time.ParseDuration(env("RELAY_DRAIN_TIMEOUT"))
		if err != nil {
			t.Fatalf("RELAY_DRAIN_TIMEOUT: %v", err)
		}
		shutdown, err := time.ParseDuration(env("RELAY_SHUTDOWN_TIMEOUT"))
		if err != nil {
			t.Fatalf("RELAY_SHUTDOWN_TIMEOUT: %v", err)
		}
		if g := pod.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second <= drain+shutdown {
			t.Errorf("terminationGracePeriodSeconds %v, want above the drain %v plus the shutdown %v", g, drain, shutdown)
		}
	})
	t.Run("nats reference", func(t *testing.T) {
		u, err := url.Parse(env("RELAY_NATS"))
		if err != nil || u.Scheme != "nats" {
			t.Fatalf("RELAY_NATS %q is not a nats:// URL", env("RELAY_NATS"))
		}
		svc := find(objs, "Service", u.Hostname())
		if svc == nil {
			t.Fatalf("RELAY_NATS names %q: no such Service in the manifests", u.Hostname())
		}
		if find(objs, "StatefulSet", u.Hostname()) == nil && find(objs, "Deployment", u.Hostname()) == nil {
			t.Errorf("no NATS workload behind Service %s", u.Hostname())
		}
		port := false
		for _, p := range svc.Spec.Ports {
			port = port || strconv.Itoa(p.Port) == u.Port()
		}
		if !port {
			t.Errorf("Service %s has no port %s", u.Hostname(), u.Port())
		}
	})
	t.Run("node id and url from the pod name", func(t *testing.T) {
		if relay.fieldRef("POD_NAME") != "metadata.name" {
			t.Fatal("POD_NAME is not the pod's metadata.name")
		}
		if env("RELAY_NODE_ID") != "$(POD_NAME)" {
			t.Errorf("RELAY_NODE_ID %q, want $(POD_NAME)", env("RELAY_NODE_ID"))
		}
		u, err := url.Parse(strings.ReplaceAll(env("RELAY_NODE_URL"), "$(POD_NAME)", "relay-0"))
		if err != nil || u.Scheme != "wss" || !strings.HasPrefix(u.Host, "relay-0.") || u.Path != "/ws" {
			t.Errorf("RELAY_NODE_URL %q: want wss://$(POD_NAME).<domain>/ws", env("RELAY_NODE_URL"))
		}
	})
	t.Run("every setting is a documented flag", func(t *testing.T) {
		doc, err := os.ReadFile("../../docs/configuration.md")
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range relay.Env {
			if !strings.HasPrefix(e.Name, "RELAY_") {
				continue
			}
			flag := "-" + strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(e.Name, "RELAY_"), "_", "-"))
			if !bytes.Contains(doc, []byte("`"+flag+"`")) {
				t.Errorf("%s: docs/configuration.md lists no %s", e.Name, flag)
			}
		}
	})
}
