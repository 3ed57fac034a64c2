// Package deploy renders everything `make deploy` applies from the same
// sources the embedded platform reads: one Knative Service per func.yaml
// (`overture func NAME`) and per HTTP service (`overture serve NAME`), the S3
// event source (`overture s3-source`), a SinkBinding that gives every one of
// them K_SINK (the broker), the CDC relay (a Deployment with its own
// SinkBinding), the CDN edge POPs (StatefulSets with a disk-cache volume),
// the public gateway (`overture gateway`), brokers/ and triggers/ moved
// into the target namespace, and — from
// deploy/config.yaml, the one list of settings — every Secret and ConfigMap
// those objects reference (settings.go).
//
// Each of them runs as its own ServiceAccount (rendered too), named after it:
// that is its sender identity, which brokers/eventpolicies.yaml names. A
// projected ServiceAccount token for the broker's audience is mounted at
// TokenPath and named by OVERTURE_IDENTITY_TOKEN_FILE; Knative Eventing with
// authentication-oidc verifies it (see docs/deploy.md and docs/security.md).
//
// Nothing is kept under config/: generating the objects means a new function
// is deployable the moment its func.yaml exists, and the image reference is
// left as ko://… for `ko resolve` to build and replace (hack/deploy.sh).
package deploy

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/overture-music/overture/internal/identity"
	"github.com/overture-music/overture/internal/manifest"
	"github.com/overture-music/overture/internal/server"
)

// TokenPath is where every workload finds its projected identity token.
const TokenPath = "/var/run/secrets/overture/identity/token"

// TokenLifetime is the projected token's expirationSeconds: the kubelet
// renews it at 80% of that, and the workload reads the file on every publish.
const TokenLifetime = 3600

// CDCServiceAccount is the ServiceAccount (identity) of the CDC relay.
const CDCServiceAccount = "cdc"

// ImportPath is the Go main package every image is built from.
const ImportPath = "github.com/overture-music/overture/cmd/overture"

// Labels put on everything rendered.
const (
	PartOfLabel = "app.kubernetes.io/part-of"
	PartOf      = "overture"
	RoleLabel   = "overture.music/role"
)

// Options configure Render; zero values mean the defaults.
type Options struct {
	Namespace string // default "overture"
	Image     string // default "ko://" + ImportPath
	Broker    string // the broker K_SINK points at; default "default"
	// LookupEnv resolves '{{ env:NAME }}' in func.yaml envs (default os.LookupEnv).
	LookupEnv func(string) (string, bool)
	// Config is deploy/config.yaml: every workload gets the settings that
	// name it in readBy, and the POPs are rendered. Nil renders the
	// functions and services with their func.yaml envs only.
	Config *Config
}

func (o *Options) defaults() {
	o.Namespace = cmp.Or(o.Namespace, manifest.DefaultNamespace)
	o.Image = cmp.Or(o.Image, "ko://"+ImportPath)
	o.Broker = cmp.Or(o.Broker, "default")
	if o.LookupEnv == nil {
		o.LookupEnv = os.LookupEnv
	}
}

// Object is one rendered Kubernetes object.
type Object = map[string]any

// Render returns a ServiceAccount and a Knative Service for each of funcs and
// services, the SinkBinding, and CDC's ServiceAccount and ContainerSource, in
// a stable order.
func Render(funcs []*manifest.Func, services []server.Service, o Options) ([]Object, error) {
	o.defaults()
	var objs []Object
	var errs []error
	sorted := slices.Clone(funcs)
	slices.SortFunc(sorted, func(a, b *manifest.Func) int { return strings.Compare(a.Name, b.Name) })
	accounts := map[string]bool{}
	account := func(name, namespace, role string) {
		if !accounts[namespace+"/"+name] {
			accounts[namespace+"/"+name] = true
			objs = append(objs, serviceAccount(name, namespace, role))
		}
	}
	for _, f := range sorted {
		obj, err := functionService(f, o)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.File, err))
			continue
		}
		account(functionAccount(f), o.Namespace, "function")
		objs = append(objs, obj)
	}
	names := map[string]bool{}
	for _, f := range sorted {
		names[f.Name] = true
	}
	for _, s := range services {
		if names[s.Name()] {
			errs = append(errs, fmt.Errorf("service %s has the name of a function; Knative Service names must be unique", s.Name()))
			continue
		}
		names[s.Name()] = true
		account(s.Name(), o.Namespace, "service")
		objs = append(objs, httpService(s.Name(), o))
	}
	for _, reserved := range []string{S3SourceName, GatewayName} {
		if names[reserved] {
			errs = append(errs, fmt.Errorf("%s is a rendered workload's name; no function or service may take it", reserved))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	account(S3SourceName, o.Namespace, "source")
	objs = append(objs, s3Source(o))
	account(GatewayName, o.Namespace, "gateway")
	objs = append(objs, gatewayService(o))
	objs = append(objs, sinkBinding(o))
	account(CDCServiceAccount, o.Namespace, "source")
	objs = append(objs, cdcDeployment(o), cdcSinkBinding(o))
	if o.Config != nil && len(o.Config.POPs) > 0 {
		account(EdgeServiceAccount, o.Namespace, "edge")
		for _, p := range o.Config.POPs {
			ss, err := popStatefulSet(p, o)
			if err != nil {
				return nil, err
			}
			objs = append(objs, popService(p, o), ss)
		}
	}
	return objs, nil
}

// YAML encodes objects as one multi-document YAML stream.
func YAML(objs []Object) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString("# Generated by `overture deploy`; do not edit.\n")
	for _, obj := range objs {
		b, err := yaml.Marshal(obj)
		if err != nil {
			return nil, fmt.Errorf("encode %v: %w", obj["kind"], err)
		}
		buf.WriteString("---\n")
		buf.Write(b)
	}
	return buf.Bytes(), nil
}

func meta(name, namespace, role string) map[string]any {
	return map[string]any{
		"name":      name,
		"namespace": namespace,
		"labels":    map[string]any{PartOfLabel: PartOf, RoleLabel: role},
	}
}

// serviceAccount is a workload's identity. It holds no API permissions and
// does not mount the API token: the only token the pod gets is the projected
// one for the broker's audience.
func serviceAccount(name, namespace, role string) Object {
	return Object{
		"apiVersion":                   "v1",
		"kind":                         "ServiceAccount",
		"metadata":                     meta(name, namespace, role),
		"automountServiceAccountToken": false,
	}
}

// functionAccount is the ServiceAccount a function runs as: func.yaml's
// deploy.serviceAccountName, or its name.
func functionAccount(f *manifest.Func) string { return cmp.Or(f.Deploy.ServiceAccountName, f.Name) }

// withIdentity gives a pod spec's first container the projected identity
// token for the broker's audience and OVERTURE_IDENTITY_TOKEN_FILE naming it.
func withIdentity(podSpec, container map[string]any, serviceAccount string, o Options) {
	dir, file := TokenPath[:strings.LastIndex(TokenPath, "/")], TokenPath[strings.LastIndex(TokenPath, "/")+1:]
	podSpec["serviceAccountName"] = serviceAccount
	podSpec["volumes"] = []any{map[string]any{
		"name": "overture-identity",
		"projected": map[string]any{"sources": []any{map[string]any{"serviceAccountToken": map[string]any{
			"audience": identity.BrokerAudience(o.Namespace, o.Broker), "expirationSeconds": TokenLifetime, "path": file,
		}}}},
	}}
	container["volumeMounts"] = []any{map[string]any{"name": "overture-identity", "mountPath": dir, "readOnly": true}}
	env, _ := container["env"].([]any)
	container["env"] = append(env, map[string]any{"name": identity.TokenFileKey, "value": TokenPath})
}

// knativeService is a serving.knative.dev/v1 Service running the overture
// binary with args as serviceAccount, probed on the health endpoints both
// modes serve.
func knativeService(name, namespace, role string, annotations map[string]string, container map[string]any, serviceAccount string, o Options) Object {
	container["name"] = "user-container"
	container["ports"] = []any{map[string]any{"containerPort": 8080}}
	container["readinessProbe"] = map[string]any{"httpGet": map[string]any{"path": "/health/readiness"}}
	container["livenessProbe"] = map[string]any{"httpGet": map[string]any{"path": "/health/liveness"}}
	podSpec := map[string]any{"containers": []any{container}}
	if sc, ok := Scaling[name]; ok && sc.ContainerConcurrency > 0 {
		podSpec["containerConcurrency"] = sc.ContainerConcurrency
	}
	withIdentity(podSpec, container, serviceAccount, o)
	tmplMeta := map[string]any{"labels": map[string]any{PartOfLabel: PartOf, RoleLabel: role}}
	if len(annotations) > 0 {
		a := map[string]any{}
		for k, v := range annotations {
			a[k] = v
		}
		tmplMeta["annotations"] = a
	}
	m := meta(name, namespace, role)
	if !Public[name] {
		m["labels"].(map[string]any)[VisibilityLabel] = ClusterLocal
	}
	return Object{
		"apiVersion": manifest.ServingV1,
		"kind":       "Service",
		"metadata":   m,
		"spec": map[string]any{
			"template": map[string]any{"metadata": tmplMeta, "spec": podSpec},
		},
	}
}

// VisibilityLabel and ClusterLocal keep a Knative Service off the ingress:
// reachable only inside the cluster.
const (
	VisibilityLabel = "networking.knative.dev/visibility"
	ClusterLocal    = "cluster-local"
)

// Public are the Knative Services the ingress routes to: the gateway (the one
// public origin; it reaches every service by its cluster-local name) and the
// S3 event source (a managed S3 outside the cluster must reach its webhook,
// which its token guards). Every other function and service is
// cluster-local, so nothing outside can post events to a function past the
// broker's EventPolicies or call a service past the gateway's Guard.
var Public = map[string]bool{GatewayName: true, S3SourceName: true}

// listenEnv makes the binary listen where the queue-proxy forwards.
var listenEnv = map[string]any{"name": "LISTEN_ADDRESS", "value": "0.0.0.0:8080"}

func functionService(f *manifest.Func, o Options) (Object, error) {
	env := []any{listenEnv}
	var envFrom []any
	for i, e := range f.Run.Envs {
		v, from, err := envVar(e, o.LookupEnv)
		if err != nil {
			return nil, fmt.Errorf("run.envs[%d]: %w", i, err)
		}
		if from != nil {
			envFrom = append(envFrom, from)
		} else {
			env = append(env, v)
		}
	}
	env = settingsEnv(env, o.Config.For(f.Name, "function"))
	container := map[string]any{"image": o.Image, "args": []any{"func", f.Name}, "env": env}
	if len(envFrom) > 0 {
		container["envFrom"] = envFrom
	}
	ann := scaleAnnotations(f)
	if sc, ok := Scaling[f.Name]; ok {
		maps.Copy(ann, sc.Annotations)
	}
	maps.Copy(ann, f.Deploy.Annotations)
	// One namespace for the whole platform (NAMESPACE): the broker, its
	// EventPolicies and the SinkBindings are namespaced, so func.yaml's
	// deploy.namespace, written for the default, does not move a function.
	ns := o.Namespace
	return knativeService(f.Name, ns, "function", ann, container, functionAccount(f), o), nil
}

// httpService runs `overture serve NAME` with the settings that name it (or
// every service) in deploy/config.yaml: each one an env entry referencing
// its Secret or ConfigMap key, never an optional envFrom that would start
// the service without them.
func httpService(name string, o Options) Object {
	container := map[string]any{
		"image": o.Image, "args": []any{"serve", name},
		"env": settingsEnv([]any{listenEnv}, o.Config.For(name, "service")),
	}
	ann := map[string]string{"autoscaling.knative.dev/min-scale": "0", "autoscaling.knative.dev/max-scale": "10"}
	if sc, ok := Scaling[name]; ok {
		maps.Copy(ann, sc.Annotations)
	}
	return knativeService(name, o.Namespace, "service", ann, container, name, o)
}

// settingsEnv appends to env an entry per setting whose key env does not
// set yet (func.yaml's own envs win), referencing the setting's Secret or
// ConfigMap key; an optional setting's reference is optional, so the
// variable is unset when the operator left it empty.
func settingsEnv(env []any, settings []Setting) []any {
	set := map[string]bool{}
	for _, e := range env {
		if m, ok := e.(map[string]any); ok {
			set[fmt.Sprint(m["name"])] = true
		}
	}
	for _, s := range settings {
		if set[s.Key] {
			continue
		}
		set[s.Key] = true
		env = append(env, refEnv(s.Key, s.Ref(), s.Optional))
	}
	return env
}

func refEnv(name string, r Ref, optional bool) map[string]any {
	kind := "secretKeyRef"
	if r.Kind == "configMap" {
		kind = "configMapKeyRef"
	}
	sel := map[string]any{"name": r.Name, "key": r.Key}
	if optional {
		sel["optional"] = true
	}
	return map[string]any{"name": name, "valueFrom": map[string]any{kind: sel}}
}

// scaleAnnotations turns deploy.options.scale into Knative autoscaling
// annotations, as `func deploy` does.
func scaleAnnotations(f *manifest.Func) map[string]string {
	ann := map[string]string{}
	sc := f.Deploy.Options.Scale
	if sc == nil {
		return ann
	}
	if sc.Min != nil {
		ann["autoscaling.knative.dev/min-scale"] = strconv.FormatInt(*sc.Min, 10)
	}
	if sc.Max != nil {
		ann["autoscaling.knative.dev/max-scale"] = strconv.FormatInt(*sc.Max, 10)
	}
	if sc.Metric != "" {
		ann["autoscaling.knative.dev/metric"] = sc.Metric
	}
	if sc.Target != nil {
		ann["autoscaling.knative.dev/target"] = strconv.FormatFloat(*sc.Target, 'f', -1, 64)
	}
	if sc.Utilization != nil {
		ann["autoscaling.knative.dev/target-utilization-percentage"] = strconv.FormatFloat(*sc.Utilization, 'f', -1, 64)
	}
	return ann
}

var templateRE = regexp.MustCompile(`^\{\{\s*(secret|configMap|env)\s*:\s*([A-Za-z0-9._-]+)\s*(?::\s*([A-Za-z0-9._-]+)\s*)?\}\}$`)

// ErrEnvTemplate is wrapped by every malformed func.yaml env value.
var ErrEnvTemplate = errors.New("invalid env value template")

// envVar converts one func.yaml env into a container env entry, or into an
// envFrom entry for '{{ secret:NAME }}' / '{{ configMap:NAME }}' without an
// env name (import every key), following knative/func's func.yaml reference.
func envVar(e manifest.FuncEnv, lookup func(string) (string, bool)) (env, envFrom map[string]any, err error) {
	v := strings.TrimSpace(e.Value)
	if !strings.HasPrefix(v, "{{") {
		if e.Name == "" {
			return nil, nil, fmt.Errorf("%w: a literal value needs a name", ErrEnvTemplate)
		}
		return map[string]any{"name": e.Name, "value": e.Value}, nil, nil
	}
	m := templateRE.FindStringSubmatch(v)
	if m == nil {
		return nil, nil, fmt.Errorf("%w: %q (want {{ secret:NAME:KEY }}, {{ configMap:NAME:KEY }}, {{ env:NAME }} or {{ secret:NAME }})", ErrEnvTemplate, e.Value)
	}
	kind, name, key := m[1], m[2], m[3]
	switch {
	case kind == "env":
		if key != "" {
			return nil, nil, fmt.Errorf("%w: %q: env takes one name", ErrEnvTemplate, e.Value)
		}
		if e.Name == "" {
			return nil, nil, fmt.Errorf("%w: %q needs a name", ErrEnvTemplate, e.Value)
		}
		val, ok := lookup(name)
		if !ok {
			return nil, nil, fmt.Errorf("%q: local environment variable %s is not set", e.Value, name)
		}
		return map[string]any{"name": e.Name, "value": val}, nil, nil
	case key == "":
		if e.Name != "" {
			return nil, nil, fmt.Errorf("%w: %q imports every key and takes no name (or add :KEY)", ErrEnvTemplate, e.Value)
		}
		ref := "secretRef"
		if kind == "configMap" {
			ref = "configMapRef"
		}
		return nil, map[string]any{ref: map[string]any{"name": name}}, nil
	default:
		if e.Name == "" {
			return nil, nil, fmt.Errorf("%w: %q needs a name", ErrEnvTemplate, e.Value)
		}
		ref := "secretKeyRef"
		if kind == "configMap" {
			ref = "configMapKeyRef"
		}
		return map[string]any{"name": e.Name, "valueFrom": map[string]any{ref: map[string]any{"name": name, "key": key}}}, nil, nil
	}
}

func brokerRef(o Options) map[string]any {
	return map[string]any{"ref": map[string]any{"apiVersion": manifest.EventingV1, "kind": "Broker", "name": o.Broker, "namespace": o.Namespace}}
}

// sinkBinding injects K_SINK (the broker ingress) into every Overture Knative
// Service, which is how function.Serve finds where to publish.
func sinkBinding(o Options) Object {
	return Object{
		"apiVersion": manifest.SourcesV1,
		"kind":       "SinkBinding",
		"metadata":   meta("overture-publishers", o.Namespace, "binding"),
		"spec": map[string]any{
			"subject": map[string]any{
				"apiVersion": manifest.ServingV1,
				"kind":       "Service",
				"selector":   map[string]any{"matchLabels": map[string]any{PartOfLabel: PartOf}},
			},
			"sink": brokerRef(o),
		},
	}
}

// cdcDeployment runs `overture cdc` (cdc.Run): one replica reading the WAL
// and posting to K_SINK (cdcSinkBinding) with the identity of ServiceAccount
// cdc.
//
// It is a Deployment with strategy Recreate, not a ContainerSource: a
// ContainerSource makes a Deployment with the default RollingUpdate (max
// surge 25%, rounded up to one pod), so every rollout would start the new
// relay while the old one still streams. A replication slot has one reader:
// the second would fail with "replication slot is active" and crash-loop,
// or, had the old one just let go, both could publish the same window.
// Recreate waits until the old pod has terminated (its slot released)
// before it creates the new one; replicas is 1 and nothing scales it.
func cdcDeployment(o Options) Object {
	env := settingsEnv([]any{listenEnv}, o.Config.For(CDCServiceAccount, "source"))
	if o.Config == nil {
		env = append(env, refEnv("DATABASE_URL", Ref{"secret", "overture-postgres", "url"}, false))
	}
	container := map[string]any{
		"name":           "cdc",
		"image":          o.Image,
		"args":           []any{"cdc"},
		"env":            env,
		"ports":          []any{map[string]any{"name": "http", "containerPort": 8080}},
		"readinessProbe": map[string]any{"httpGet": map[string]any{"path": "/health/readiness", "port": 8080}},
		"livenessProbe":  map[string]any{"httpGet": map[string]any{"path": "/health/liveness", "port": 8080}},
	}
	podSpec := map[string]any{"containers": []any{container}, "terminationGracePeriodSeconds": 30}
	withIdentity(podSpec, container, CDCServiceAccount, o)
	labels := map[string]any{PartOfLabel: PartOf, RoleLabel: "source", NameLabel: "cdc"}
	return Object{
		"apiVersion": "apps/v1",
		"kind":       "Deployment",
		"metadata":   meta("cdc", o.Namespace, "source"),
		"spec": map[string]any{
			"replicas": 1,
			"strategy": map[string]any{"type": "Recreate"},
			"selector": map[string]any{"matchLabels": map[string]any{NameLabel: "cdc"}},
			"template": map[string]any{"metadata": map[string]any{"labels": labels}, "spec": podSpec},
		},
	}
}

// cdcSinkBinding gives the cdc Deployment K_SINK (the broker).
func cdcSinkBinding(o Options) Object {
	return Object{
		"apiVersion": manifest.SourcesV1,
		"kind":       "SinkBinding",
		"metadata":   meta("cdc", o.Namespace, "binding"),
		"spec": map[string]any{
			"subject": map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "name": "cdc"},
			"sink":    brokerRef(o),
		},
	}
}

// S3SourceName is the S3 event source's Knative Service and identity
// (ingest.SourceName; brokers/eventpolicies.yaml allows it).
const S3SourceName = "ingest-source"

// s3Source runs `overture s3-source`: versitygw's webhook target, which
// turns ObjectCreated notifications of the uploads bucket into events. It
// is a Knative Service like the others (K_SINK from overture-publishers),
// kept at one pod at least: versitygw posts each notification once with a
// 3 s timeout and exits at start when the URL refuses connections.
func s3Source(o Options) Object {
	container := map[string]any{
		"image": o.Image, "args": []any{"s3-source"},
		"env": settingsEnv([]any{listenEnv}, o.Config.For(S3SourceName, "source")),
	}
	ann := map[string]string{}
	maps.Copy(ann, Scaling[S3SourceName].Annotations)
	return knativeService(S3SourceName, o.Namespace, "source", ann, container, S3SourceName, o)
}

// GatewayName is the public gateway's Knative Service.
const GatewayName = "gateway"

// gatewayService runs `overture gateway`: the one public origin of `make
// run` on the cluster — every service's /v1 routes proxied to its Knative
// Service, the web app, /openapi.json. PUBLIC_BASE_URL points here.
func gatewayService(o Options) Object {
	container := map[string]any{
		"image": o.Image, "args": []any{"gateway"},
		"env": settingsEnv([]any{listenEnv}, o.Config.For(GatewayName, "gateway")),
	}
	ann := map[string]string{}
	maps.Copy(ann, Scaling[GatewayName].Annotations)
	return knativeService(GatewayName, o.Namespace, "gateway", ann, container, GatewayName, o)
}

// EdgeServiceAccount is the POPs' ServiceAccount: they publish nothing, so
// it has no token at all.
const EdgeServiceAccount = "edge"

// NameLabel names a workload's pods for its selector.
const NameLabel = "app.kubernetes.io/name"

// ImageUser is the numeric non-root user of the base image
// (deploy/image/Dockerfile).
const ImageUser = 65532

// EdgeCacheDir is where a POP keeps its disk tier (a PersistentVolume).
const EdgeCacheDir = "/var/cache/overture-edge"

func popService(p POP, o Options) Object {
	return Object{
		"apiVersion": "v1",
		"kind":       "Service",
		"metadata":   meta(p.Name, o.Namespace, "edge"),
		"spec": map[string]any{
			"selector": map[string]any{NameLabel: p.Name},
			"ports":    []any{map[string]any{"name": "http", "port": 8080, "targetPort": 8080}},
		},
	}
}

// popStatefulSet runs one POP (`overture edge`) with a PersistentVolume for
// its disk tier, so a restarted POP comes back warm (docs/cdn.md): a
// StatefulSet keeps the claim across restarts and reschedules, which a
// Deployment or a Knative Service (no volumes claims) would not. The disk
// tier is bounded to 90% of the volume.
func popStatefulSet(p POP, o Options) (Object, error) {
	disk, err := p.DiskBytes()
	if err != nil {
		return nil, err
	}
	env := []any{
		map[string]any{"name": "EDGE_DISK_BYTES", "value": strconv.FormatInt(disk/10*9, 10)},
		map[string]any{"name": "EDGE_MEMORY_BYTES", "value": strconv.FormatInt(p.MemoryBytes, 10)},
	}
	env = settingsEnv(env, o.Config.For(EdgeServiceAccount, "edge"))
	container := map[string]any{
		"name":           "edge",
		"image":          o.Image,
		"args":           []any{"edge", "-name", p.Name, "-region", p.Region, "-addr", "0.0.0.0:8080", "-disk-dir", EdgeCacheDir},
		"env":            env,
		"ports":          []any{map[string]any{"name": "http", "containerPort": 8080}},
		"readinessProbe": map[string]any{"httpGet": map[string]any{"path": "/health/readiness", "port": 8080}},
		"livenessProbe":  map[string]any{"httpGet": map[string]any{"path": "/health/liveness", "port": 8080}},
		"volumeMounts":   []any{map[string]any{"name": "cache", "mountPath": EdgeCacheDir}},
	}
	labels := map[string]any{PartOfLabel: PartOf, RoleLabel: "edge", NameLabel: p.Name}
	return Object{
		"apiVersion": "apps/v1",
		"kind":       "StatefulSet",
		"metadata":   meta(p.Name, o.Namespace, "edge"),
		"spec": map[string]any{
			"replicas":    1,
			"serviceName": p.Name,
			"selector":    map[string]any{"matchLabels": map[string]any{NameLabel: p.Name}},
			"template": map[string]any{
				"metadata": map[string]any{"labels": labels},
				"spec": map[string]any{
					"serviceAccountName":            EdgeServiceAccount,
					"automountServiceAccountToken":  false,
					"terminationGracePeriodSeconds": 30,
					// The image's user (deploy/image/Dockerfile) must own the
					// cache volume on storage that is not world-writable.
					"securityContext": map[string]any{"runAsUser": ImageUser, "runAsGroup": ImageUser, "fsGroup": ImageUser},
					"containers":      []any{container},
				},
			},
			"volumeClaimTemplates": []any{map[string]any{
				"metadata": map[string]any{"name": "cache"},
				"spec": map[string]any{
					"accessModes": []any{"ReadWriteOnce"},
					"resources":   map[string]any{"requests": map[string]any{"storage": p.Disk}},
				},
			}},
		},
	}, nil
}
