package deploy_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"

	"github.com/overture-music/overture/internal/deploy"
	"github.com/overture-music/overture/internal/manifest"
)

var dns1123 = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// get walks obj along path ("spec.template.spec.containers").
func get(obj map[string]any, path string) (any, bool) {
	var cur any = obj
	for _, p := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[p]; !ok {
			return nil, false
		}
	}
	return cur, true
}

func str(obj map[string]any, path string) string {
	v, _ := get(obj, path)
	s, _ := v.(string)
	return s
}

func list(obj map[string]any, path string) []any {
	v, _ := get(obj, path)
	l, _ := v.([]any)
	return l
}

// checkDestination checks a Knative duck Destination: a ref with kind and
// name, or an absolute URI.
func checkDestination(obj map[string]any, path string) error {
	if str(obj, path+".ref.kind") != "" && str(obj, path+".ref.name") != "" && str(obj, path+".ref.apiVersion") != "" {
		return nil
	}
	if u := str(obj, path+".uri"); strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://") {
		return nil
	}
	return fmt.Errorf("%s: needs ref{apiVersion, kind, name} or an absolute uri", path)
}

func checkContainers(obj map[string]any, path string) error {
	cs := list(obj, path)
	if len(cs) == 0 {
		return fmt.Errorf("%s: no containers", path)
	}
	for i, c := range cs {
		cm, _ := c.(map[string]any)
		if str(cm, "image") == "" {
			return fmt.Errorf("%s[%d].image is empty", path, i)
		}
		for _, e := range list(cm, "env") {
			em, _ := e.(map[string]any)
			if str(em, "name") == "" {
				return fmt.Errorf("%s[%d].env: entry without name", path, i)
			}
			_, hasValue := em["value"]
			_, hasFrom := em["valueFrom"]
			if hasValue == hasFrom {
				return fmt.Errorf("%s[%d].env %s: exactly one of value and valueFrom", path, i, str(em, "name"))
			}
		}
	}
	return nil
}

// wellFormed checks what the Knative and Kubernetes API servers require of
// each kind before they accept an object.
func wellFormed(obj map[string]any) error {
	var errs []error
	api, kind, name := str(obj, "apiVersion"), str(obj, "kind"), str(obj, "metadata.name")
	if api == "" || kind == "" {
		return errors.New("apiVersion and kind are required")
	}
	if !dns1123.MatchString(name) || len(name) > 63 {
		errs = append(errs, fmt.Errorf("metadata.name %q is not a DNS-1123 label", name))
	}
	switch api + " " + kind {
	case "serving.knative.dev/v1 Service":
		errs = append(errs, checkContainers(obj, "spec.template.spec.containers"))
		for k, v := range mapAt(obj, "spec.template.metadata.annotations") {
			if _, ok := v.(string); !ok {
				errs = append(errs, fmt.Errorf("annotation %s is not a string", k))
			}
		}
	case "eventing.knative.dev/v1 Broker":
		if d, ok := get(obj, "spec.delivery.deadLetterSink"); ok && d != nil {
			errs = append(errs, checkDestination(obj, "spec.delivery.deadLetterSink"))
		}
	case "eventing.knative.dev/v1 Trigger":
		if str(obj, "spec.broker") == "" {
			errs = append(errs, errors.New("spec.broker is required"))
		}
		errs = append(errs, checkDestination(obj, "spec.subscriber"))
	case "sources.knative.dev/v1 PingSource":
		errs = append(errs, checkDestination(obj, "spec.sink"))
	case "sources.knative.dev/v1 SinkBinding":
		errs = append(errs, checkDestination(obj, "spec.sink"))
		if str(obj, "spec.subject.apiVersion") == "" || str(obj, "spec.subject.kind") == "" {
			errs = append(errs, errors.New("spec.subject needs apiVersion and kind"))
		}
		_, sel := get(obj, "spec.subject.selector")
		if (str(obj, "spec.subject.name") == "") == !sel {
			errs = append(errs, errors.New("spec.subject needs exactly one of name and selector"))
		}
	case "apps/v1 Deployment", "apps/v1 StatefulSet":
		errs = append(errs, checkWorkload(obj))
	case "batch/v1 Job":
		errs = append(errs, checkContainers(obj, "spec.template.spec.containers"))
		if p := str(obj, "spec.template.spec.restartPolicy"); p != "OnFailure" && p != "Never" {
			errs = append(errs, fmt.Errorf("a Job's restartPolicy must be OnFailure or Never, not %q", p))
		}
	case "v1 Service":
		if len(mapAt(obj, "spec.selector")) == 0 {
			errs = append(errs, errors.New("spec.selector is required (a Service without one routes nowhere)"))
		}
		for i, p := range list(obj, "spec.ports") {
			pm, _ := p.(map[string]any)
			if _, ok := pm["port"].(float64); !ok {
				if _, ok := pm["port"].(int); !ok {
					errs = append(errs, fmt.Errorf("spec.ports[%d].port is not a number", i))
				}
			}
		}
	case "v1 Secret":
		for k, v := range mapAt(obj, "stringData") {
			if _, ok := v.(string); !ok {
				errs = append(errs, fmt.Errorf("stringData.%s is not a string", k))
			}
		}
	case "v1 ServiceAccount":
	case "eventing.knative.dev/v1alpha1 EventPolicy":
		if len(list(obj, "spec.from")) == 0 {
			errs = append(errs, errors.New("spec.from is required"))
		}
	case "v1 ConfigMap":
		for k, v := range mapAt(obj, "data") {
			if _, ok := v.(string); !ok {
				errs = append(errs, fmt.Errorf("data.%s is not a string", k))
			}
		}
	default:
		errs = append(errs, fmt.Errorf("unexpected kind %s %s", api, kind))
	}
	return errors.Join(errs...)
}

// checkWorkload is the structural check of a Deployment or StatefulSet: what
// the API server's validation of apps/v1 refuses (a selector that does not
// select the template's labels, containers without name or image, a mount
// of an undeclared volume).
func checkWorkload(obj map[string]any) error {
	var errs []error
	sel := mapAt(obj, "spec.selector.matchLabels")
	labels := mapAt(obj, "spec.template.metadata.labels")
	if len(sel) == 0 {
		errs = append(errs, errors.New("spec.selector.matchLabels is required"))
	}
	for k, v := range sel {
		if labels[k] != v {
			errs = append(errs, fmt.Errorf("selector %s=%v does not match the template's labels", k, v))
		}
	}
	errs = append(errs, checkContainers(obj, "spec.template.spec.containers"))
	volumes := map[string]bool{}
	for _, v := range list(obj, "spec.template.spec.volumes") {
		volumes[str(v.(map[string]any), "name")] = true
	}
	for _, v := range list(obj, "spec.volumeClaimTemplates") {
		volumes[str(v.(map[string]any), "metadata.name")] = true
	}
	for _, c := range list(obj, "spec.template.spec.containers") {
		cm := c.(map[string]any)
		if !dns1123.MatchString(str(cm, "name")) {
			errs = append(errs, fmt.Errorf("container name %q is not a DNS-1123 label", str(cm, "name")))
		}
		for _, m := range list(cm, "volumeMounts") {
			if n := str(m.(map[string]any), "name"); !volumes[n] {
				errs = append(errs, fmt.Errorf("container %s mounts volume %s, which is not declared", str(cm, "name"), n))
			}
		}
	}
	if str(obj, "kind") == "StatefulSet" && str(obj, "spec.serviceName") == "" {
		errs = append(errs, errors.New("a StatefulSet needs spec.serviceName"))
	}
	return errors.Join(errs...)
}

func mapAt(obj map[string]any, path string) map[string]any {
	v, _ := get(obj, path)
	m, _ := v.(map[string]any)
	return m
}

// parseStream splits a multi-document YAML stream and decodes each object.
func parseStream(t *testing.T, where string, b []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(b), -1) {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		var obj map[string]any
		require.NoError(t, yaml.Unmarshal([]byte(doc), &obj), "%s document %d", where, i+1)
		out = append(out, obj)
	}
	return out
}

func stripComments(doc string) string {
	var b strings.Builder
	for line := range strings.Lines(doc) {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line)
		}
	}
	return b.String()
}

func TestWellFormedRejectsBrokenObjects(t *testing.T) {
	for name, doc := range map[string]string{
		"TriggerWithoutBroker": "apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t}\nspec: {subscriber: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: f}}}",
		"TriggerWithoutTarget": "apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t}\nspec: {broker: default, subscriber: {}}",
		"ServiceWithoutImage":  "apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata: {name: s}\nspec: {template: {spec: {containers: [{args: [x]}]}}}",
		"BadName":              "apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata: {name: Bad_Name}\nspec: {template: {spec: {containers: [{image: i}]}}}",
		"NumericAnnotation":    "apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata: {name: s}\nspec: {template: {metadata: {annotations: {autoscaling.knative.dev/min-scale: 0}}, spec: {containers: [{image: i}]}}}",
		"RelativeSinkURI":      "apiVersion: sources.knative.dev/v1\nkind: PingSource\nmetadata: {name: p}\nspec: {sink: {uri: /x}}",
		"EnvWithValueAndFrom":  "apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata: {name: s}\nspec: {template: {spec: {containers: [{image: i, env: [{name: A, value: b, valueFrom: {}}]}]}}}",
		"SinkBindingNoSubject": "apiVersion: sources.knative.dev/v1\nkind: SinkBinding\nmetadata: {name: b}\nspec: {sink: {ref: {apiVersion: eventing.knative.dev/v1, kind: Broker, name: default}}}",
	} {
		t.Run(name, func(t *testing.T) {
			var obj map[string]any
			require.NoError(t, yaml.Unmarshal([]byte(doc), &obj))
			require.Error(t, wellFormed(obj))
		})
	}
}

func TestFuncYAMLEnvAndScale(t *testing.T) {
	funcYAML := `specVersion: 0.36.0
name: mailer
runtime: go
invoke: cloudevent
created: "2026-11-25T20:00:00Z"
run:
  envs:
    - name: LEVEL
      value: debug
    - name: DATABASE_URL
      value: '{{ secret:overture-postgres:url }}'
    - name: SMTP_HOST
      value: '{{ configMap:overture-config:smtp-host }}'
    - name: REGION
      value: '{{ env:DEPLOY_REGION }}'
    - value: '{{ secret:mail-credentials }}'
deploy:
  annotations:
    example.com/owner: mail
  options:
    scale: {min: 1, max: 4, metric: rps, target: 150, utilization: 80}
`
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "mailer"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "mailer", "func.yaml"), []byte(funcYAML), 0o644))
	set, err := manifest.LoadDir(dir)
	require.NoError(t, err)
	env := map[string]string{"DEPLOY_REGION": "eu-north"}
	objs, err := deploy.Render(set.Funcs, nil, deploy.Options{Namespace: "music", LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	require.NoError(t, err)
	require.Equal(t, "ServiceAccount", str(objs[0], "kind"), "the function's identity comes first")
	require.Equal(t, "mailer", str(objs[0], "metadata.name"))
	svc := objs[1]
	require.Equal(t, "music", str(svc, "metadata.namespace"))
	require.Equal(t, "mailer", str(svc, "spec.template.spec.serviceAccountName"))
	ann := mapAt(svc, "spec.template.metadata.annotations")
	require.Equal(t, map[string]any{
		"autoscaling.knative.dev/min-scale": "1", "autoscaling.knative.dev/max-scale": "4",
		"autoscaling.knative.dev/metric": "rps", "autoscaling.knative.dev/target": "150",
		"autoscaling.knative.dev/target-utilization-percentage": "80", "example.com/owner": "mail",
	}, ann)
	c := list(svc, "spec.template.spec.containers")[0].(map[string]any)
	require.Equal(t, []any{
		map[string]any{"name": "LISTEN_ADDRESS", "value": "0.0.0.0:8080"},
		map[string]any{"name": "LEVEL", "value": "debug"},
		map[string]any{"name": "DATABASE_URL", "valueFrom": map[string]any{"secretKeyRef": map[string]any{"name": "overture-postgres", "key": "url"}}},
		map[string]any{"name": "SMTP_HOST", "valueFrom": map[string]any{"configMapKeyRef": map[string]any{"name": "overture-config", "key": "smtp-host"}}},
		map[string]any{"name": "REGION", "value": "eu-north"},
		map[string]any{"name": "OVERTURE_IDENTITY_TOKEN_FILE", "value": deploy.TokenPath},
	}, c["env"])
	require.Equal(t, []any{map[string]any{"secretRef": map[string]any{"name": "mail-credentials"}}}, c["envFrom"])

	delete(env, "DEPLOY_REGION")
	_, err = deploy.Render(set.Funcs, nil, deploy.Options{LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	require.ErrorContains(t, err, "DEPLOY_REGION is not set")
}

func TestEnvTemplateErrors(t *testing.T) {
	for _, v := range []string{"{{ secret }}", "{{ vault:x:y }}", "{{ env:A:B }}", "{{ secret:a:b:c }}", "{{ configMap: }}"} {
		t.Run(v, func(t *testing.T) {
			f := &manifest.Func{Name: "f", File: "f/func.yaml"}
			f.Run.Envs = []manifest.FuncEnv{{Name: "X", Value: v}}
			_, err := deploy.Render([]*manifest.Func{f}, nil, deploy.Options{LookupEnv: func(string) (string, bool) { return "", true }})
			require.ErrorIs(t, err, deploy.ErrEnvTemplate)
		})
	}
}

func FuzzEnvTemplate(f *testing.F) {
	for _, s := range []string{"{{ secret:a:b }}", "{{ configMap:c }}", "{{ env:HOME }}", "plain", "{{", "{{ secret:a:b:c }}"} {
		f.Add("NAME", s)
		f.Add("", s)
	}
	f.Fuzz(func(t *testing.T, name, value string) {
		fn := &manifest.Func{Name: "f", File: "f/func.yaml"}
		fn.Run.Envs = []manifest.FuncEnv{{Name: name, Value: value}}
		objs, err := deploy.Render([]*manifest.Func{fn}, nil, deploy.Options{LookupEnv: func(string) (string, bool) { return "v", true }})
		if err != nil {
			return
		}
		// Whatever renders is a well-formed Knative Service.
		if err := wellFormed(objs[0]); err != nil && name != "" {
			t.Fatalf("rendered %q=%q into a broken object: %v", name, value, err)
		}
	})
}

// kind-config.yaml maps Kourier's NodePorts to the host, and .ko.yaml builds
// the binary every rendered Service runs.
func TestClusterFiles(t *testing.T) {
	var kind struct {
		Kind       string `json:"kind"`
		APIVersion string `json:"apiVersion"`
		Name       string `json:"name"`
		Nodes      []struct {
			Role     string `json:"role"`
			Image    string `json:"image"`
			Mappings []struct {
				ContainerPort int    `json:"containerPort"`
				HostPort      int    `json:"hostPort"`
				ListenAddress string `json:"listenAddress"`
			} `json:"extraPortMappings"`
		} `json:"nodes"`
	}
	b, err := os.ReadFile("../../kind-config.yaml")
	require.NoError(t, err)
	require.NoError(t, yaml.UnmarshalStrict(b, &kind))
	require.Equal(t, "Cluster", kind.Kind)
	require.Equal(t, "kind.x-k8s.io/v1alpha4", kind.APIVersion)
	got := map[int]int{}
	for _, n := range kind.Nodes {
		for _, m := range n.Mappings {
			got[m.ContainerPort] = m.HostPort
		}
	}
	require.Equal(t, map[int]int{31080: 80, 31443: 443}, got)

	var ko struct {
		Builds []struct {
			Main string `json:"main"`
		} `json:"builds"`
	}
	b, err = os.ReadFile("../../.ko.yaml")
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(b, &ko))
	require.Len(t, ko.Builds, 1)
	require.Equal(t, "./cmd/overture", ko.Builds[0].Main)
	require.Equal(t, "github.com/overture-music/overture/"+strings.TrimPrefix(ko.Builds[0].Main, "./"), deploy.ImportPath)
}
