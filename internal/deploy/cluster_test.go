package deploy_test

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/overture-music/overture/edge"
	"github.com/overture-music/overture/functions"
	"github.com/overture-music/overture/internal/config"
	"github.com/overture-music/overture/internal/deploy"
	"github.com/overture-music/overture/internal/identity"
	"github.com/overture-music/overture/internal/manifest"
	"github.com/overture-music/overture/internal/platform"
	"github.com/overture-music/overture/internal/steering"
)

// cluster is everything `make deploy` applies to one namespace, as the
// API server would receive it: the Secrets and ConfigMaps of `overture
// deploy config`, the dependencies of deploy/deps/ (kubectl apply -n), and
// `overture deploy render` (brokers/, the workloads, triggers/).
type cluster struct {
	ns       string
	cfg      *deploy.Config
	values   map[string]string
	config   []map[string]any // Secrets and ConfigMaps
	deps     []map[string]any // deploy/deps/*.yaml
	rendered []map[string]any // deploy render
	funcs    []*manifest.Func
}

func (c *cluster) all() []map[string]any {
	return slices.Concat(c.config, c.deps, c.rendered)
}

func loadCluster(t *testing.T, ns string) *cluster {
	t.Helper()
	cfg, err := deploy.LoadConfig("../../deploy/config.yaml")
	require.NoError(t, err)
	vals, err := cfg.Values(ns, func(string) (string, bool) { return "", false }, nil, nil)
	require.NoError(t, err, "deploy config with nothing given must resolve: every required setting has a default or is generated")
	set, err := manifest.LoadDir("../../functions")
	require.NoError(t, err)
	work, err := deploy.Render(set.Funcs, platform.Services(), deploy.Options{Namespace: ns, Config: cfg, LookupEnv: func(string) (string, bool) { return "", false }})
	require.NoError(t, err)
	brokers, err := deploy.ReadManifests("../../brokers")
	require.NoError(t, err)
	triggers, err := deploy.ReadManifests("../../triggers")
	require.NoError(t, err)
	deploy.Rebase(brokers, ns)
	deploy.Rebase(triggers, ns)
	deps, err := deploy.ReadManifests("../../deploy/deps")
	require.NoError(t, err)
	for _, d := range deps {
		require.Empty(t, str(d, "metadata.namespace"), "deploy/deps/ objects take the namespace from kubectl apply -n")
		d["metadata"].(map[string]any)["namespace"] = ns
	}
	// Through YAML and back, as kubectl receives them.
	decode := func(objs []deploy.Object) []map[string]any {
		b, err := deploy.YAML(objs)
		require.NoError(t, err)
		return parseStream(t, "stream", b)
	}
	return &cluster{
		ns: ns, cfg: cfg, values: vals, funcs: set.Funcs,
		config:   decode(cfg.ConfigObjects(ns, vals)),
		deps:     decode(deps),
		rendered: decode(slices.Concat(brokers, work, triggers)),
	}
}

func (c *cluster) find(kind, name string) map[string]any {
	for _, o := range c.all() {
		if str(o, "kind") == kind && str(o, "metadata.name") == name {
			return o
		}
	}
	return nil
}

// data returns what the deploy puts under key of Secret or ConfigMap name.
func (c *cluster) data(kind, name, key string) (string, bool) {
	o := c.find(kind, name)
	if o == nil {
		return "", false
	}
	field := "data"
	if kind == "Secret" {
		field = "stringData"
	}
	v, ok := mapAt(o, field)[key].(string)
	return v, ok
}

// podSpecs yields every pod template of a workload, with where it is.
func podSpecs(obj map[string]any) []map[string]any {
	switch str(obj, "kind") {
	case "Service":
		if str(obj, "apiVersion") != manifest.ServingV1 {
			return nil
		}
		return []map[string]any{mapAt(obj, "spec.template.spec")}
	case "Deployment", "StatefulSet", "Job":
		return []map[string]any{mapAt(obj, "spec.template.spec")}
	}
	return nil
}

// env resolves a container's environment as the kubelet would from what
// the deploy creates; a missing key of a non-optional reference is an
// error (the pod would stay in CreateContainerConfigError).
func (c *cluster) env(container map[string]any) (map[string]string, error) {
	out := map[string]string{}
	var errs []error
	for _, e := range list(container, "env") {
		em := e.(map[string]any)
		name := str(em, "name")
		if v, ok := em["value"]; ok {
			out[name] = fmt.Sprint(v)
			continue
		}
		var kind, ref string
		switch {
		case str(em, "valueFrom.secretKeyRef.name") != "":
			kind, ref = "Secret", "valueFrom.secretKeyRef"
		case str(em, "valueFrom.configMapKeyRef.name") != "":
			kind, ref = "ConfigMap", "valueFrom.configMapKeyRef"
		default:
			errs = append(errs, fmt.Errorf("env %s: no secretKeyRef or configMapKeyRef", name))
			continue
		}
		v, ok := c.data(kind, str(em, ref+".name"), str(em, ref+".key"))
		optional, _ := get(em, ref+".optional")
		switch {
		case ok:
			out[name] = v
		case optional != true:
			errs = append(errs, fmt.Errorf("env %s: %s %s has no key %s, and the reference is not optional", name, kind, str(em, ref+".name"), str(em, ref+".key")))
		}
	}
	for _, e := range list(container, "envFrom") {
		em := e.(map[string]any)
		for field, kind := range map[string]string{"secretRef": "Secret", "configMapRef": "ConfigMap"} {
			if n := str(em, field+".name"); n != "" && c.find(kind, n) == nil {
				errs = append(errs, fmt.Errorf("envFrom %s %s: not created", kind, n))
			}
		}
	}
	return out, errors.Join(errs...)
}

func workloadName(obj map[string]any) string {
	return str(obj, "kind") + " " + str(obj, "metadata.name")
}

// Everything `make deploy` applies is well formed, and every Knative object
// validates against Knative v1.18's CRD schemas (testdata/crds/SOURCE).
func TestEverythingDeployedIsValid(t *testing.T) {
	c := loadCluster(t, "overture")
	schemas := crdSchemas(t)
	seen := map[string]bool{}
	kinds := map[string]int{}
	for _, obj := range c.all() {
		id := fmt.Sprintf("%s %s %s/%s", str(obj, "apiVersion"), str(obj, "kind"), str(obj, "metadata.namespace"), str(obj, "metadata.name"))
		kinds[str(obj, "kind")]++
		require.False(t, seen[id], "%s is applied twice", id)
		seen[id] = true
		require.Equal(t, "overture", str(obj, "metadata.namespace"), id)
		if err := wellFormed(obj); err != nil {
			t.Errorf("%s: %v", id, err)
		}
		found, err := validateCRD(schemas, obj)
		if strings.Contains(str(obj, "apiVersion"), "knative.dev") {
			require.True(t, found, "%s: no CRD schema copied for it (testdata/crds)", id)
		}
		if err != nil {
			t.Errorf("%s: %v", id, err)
		}
	}
	// Every function and service is a Knative Service running its binary.
	for _, f := range c.funcs {
		svc := c.find("Service", f.Name)
		require.NotNil(t, svc, "no Knative Service for function %s", f.Name)
		container := list(svc, "spec.template.spec.containers")[0].(map[string]any)
		require.Equal(t, []any{"func", f.Name}, container["args"])
		require.Equal(t, "ko://"+deploy.ImportPath, container["image"])
	}
	for _, s := range platform.Services() {
		svc := c.find("Service", s.Name())
		require.NotNil(t, svc, "no Knative Service for service %s", s.Name())
		require.Equal(t, []any{"serve", s.Name()}, list(svc, "spec.template.spec.containers")[0].(map[string]any)["args"])
	}
	t.Logf("%d objects: %v", len(c.all()), kinds)
}

// No pod of the deployment can stay in CreateContainerConfigError: every
// Secret and ConfigMap key any container, rendered or of deploy/deps/,
// references is one the deploy creates, and every volume's ConfigMap
// exists.
func TestEveryReferencedKeyIsCreated(t *testing.T) {
	c := loadCluster(t, "overture")
	pods := 0
	for _, obj := range c.all() {
		for _, spec := range podSpecs(obj) {
			pods++
			for _, ct := range slices.Concat(list(spec, "containers"), list(spec, "initContainers")) {
				if _, err := c.env(ct.(map[string]any)); err != nil {
					t.Errorf("%s: %v", workloadName(obj), err)
				}
			}
			for _, v := range list(spec, "volumes") {
				if n := str(v.(map[string]any), "configMap.name"); n != "" && c.find("ConfigMap", n) == nil {
					t.Errorf("%s: volume from ConfigMap %s, which is not created", workloadName(obj), n)
				}
			}
		}
	}
	require.Greater(t, pods, 30)
	// The config objects hold nothing but the list's settings, and every
	// func.yaml reference names a setting of that same key.
	for _, f := range c.funcs {
		for _, e := range f.Run.Envs {
			m := regexp.MustCompile(`^\{\{\s*(secret|configMap)\s*:\s*([^:\s]+)\s*:\s*([^\s}]+)\s*\}\}$`).FindStringSubmatch(strings.TrimSpace(e.Value))
			if m == nil {
				continue
			}
			s, ok := c.cfg.Setting(e.Name)
			require.True(t, ok, "%s: env %s is not in deploy/config.yaml", f.File, e.Name)
			require.Equal(t, s.In, m[1]+":"+m[2]+":"+m[3], "%s: env %s references another key than deploy/config.yaml lists for it", f.File, e.Name)
		}
	}
}

// A func.yaml literal for a key of deploy/config.yaml would leave that one
// function on another value than everyone else reading the key (the stats
// writer on PostgreSQL while the listens service reads ClickHouse): it may
// only repeat the list's default.
func TestFuncYAMLLiteralsAgreeWithTheList(t *testing.T) {
	c := loadCluster(t, "overture")
	for _, f := range c.funcs {
		for _, e := range f.Run.Envs {
			s, ok := c.cfg.Setting(e.Name)
			if !ok || strings.HasPrefix(strings.TrimSpace(e.Value), "{{") || s.Value == "" {
				continue
			}
			require.Equal(t, c.values[e.Name], e.Value, "%s sets %s literally to another value than deploy/config.yaml's; reference {{ %s }} instead", f.File, e.Name, s.In)
		}
	}
}

// readers maps every reader name deploy/config.yaml may use to how it is
// deployed: a function, a service, a source/edge/cdc workload, or an
// in-cluster dependency of deploy/deps/.
func (c *cluster) readers() map[string]string {
	r := map[string]string{}
	for _, f := range c.funcs {
		r[f.Name] = "function"
	}
	for _, s := range platform.Services() {
		r[s.Name()] = "service"
	}
	r[deploy.CDCServiceAccount] = "source"
	r[deploy.S3SourceName] = "source"
	r[deploy.EdgeServiceAccount] = "edge"
	r[deploy.GatewayName] = "gateway"
	for _, d := range c.deps {
		if k := str(d, "kind"); k == "StatefulSet" || k == "Deployment" {
			r[str(d, "metadata.name")] = "dependency"
		}
	}
	return r
}

// containersOf returns the containers of the workloads reader runs as.
func (c *cluster) containersOf(reader, kind string) []map[string]any {
	var out []map[string]any
	for _, obj := range c.all() {
		name := str(obj, "metadata.name")
		match := name == reader
		if kind == "edge" {
			match = str(obj, "kind") == "StatefulSet" && mapAt(obj, "metadata.labels")[deploy.RoleLabel] == "edge"
		}
		if kind == "dependency" && str(obj, "kind") == "Job" && strings.HasPrefix(name, reader+"-") {
			match = true
		}
		if !match {
			continue
		}
		for _, spec := range podSpecs(obj) {
			for _, ct := range list(spec, "containers") {
				out = append(out, ct.(map[string]any))
			}
		}
	}
	return out
}

// Every component gets every setting deploy/config.yaml says it reads,
// resolved to a value unless the setting is optional; a dependency of
// deploy/deps/ references exactly the settings that name it. And the
// components whose configuration parses without a network (the POPs,
// steering, cdn-warm/cdn-purge's POP admin client) accept what they get.
func TestEveryComponentGetsItsSettings(t *testing.T) {
	c := loadCluster(t, "overture")
	readers := c.readers()
	for _, s := range c.cfg.Settings {
		for _, r := range s.ReadBy {
			if r == deploy.ReadByFunctions || r == deploy.ReadByServices {
				continue
			}
			require.Contains(t, readers, r, "setting %s: readBy names %s, which the deploy does not run", s.Key, r)
		}
	}
	for reader, kind := range readers {
		containers := c.containersOf(reader, kind)
		require.NotEmpty(t, containers, "%s (%s) is not deployed", reader, kind)
		if kind == "dependency" {
			// A dependency reads settings by their Secret/ConfigMap key:
			// exactly those whose readBy names it.
			refs := map[deploy.Ref]bool{}
			for _, ct := range containers {
				for _, e := range list(ct, "env") {
					em := e.(map[string]any)
					if n := str(em, "valueFrom.secretKeyRef.name"); n != "" {
						refs[deploy.Ref{Kind: "secret", Name: n, Key: str(em, "valueFrom.secretKeyRef.key")}] = true
					}
					if n := str(em, "valueFrom.configMapKeyRef.name"); n != "" {
						refs[deploy.Ref{Kind: "configMap", Name: n, Key: str(em, "valueFrom.configMapKeyRef.key")}] = true
					}
				}
			}
			for _, s := range c.cfg.Settings {
				if reads := s.ReadByComponent(reader, kind); reads != refs[s.Ref()] {
					t.Errorf("deploy/deps %s: references %s (%s): %v; its readBy names %s: %v", reader, s.Key, s.In, refs[s.Ref()], reader, reads)
				}
			}
			continue
		}
		for _, ct := range containers {
			env, err := c.env(ct)
			require.NoError(t, err, reader)
			for _, s := range c.cfg.Settings {
				if !s.ReadByComponent(reader, kind) {
					continue
				}
				v, set := env[s.Key]
				require.True(t, set || s.Optional, "%s does not get %s (deploy/config.yaml says it reads it)", reader, s.Key)
				if set && !s.Optional {
					require.NotEmpty(t, v, "%s gets an empty %s", reader, s.Key)
				}
			}
		}
	}
	// Parse checks where a component's configuration parses offline.
	for _, ct := range c.containersOf(deploy.EdgeServiceAccount, "edge") {
		env, err := c.env(ct)
		require.NoError(t, err)
		_, err = edge.ConfigFromMap(env)
		require.NoError(t, err, "a POP does not accept its rendered configuration")
	}
	env, err := c.env(c.containersOf("steering", "service")[0])
	require.NoError(t, err)
	sc, err := steering.ConfigFromMap(env)
	require.NoError(t, err, "steering does not accept its rendered configuration")
	require.Len(t, sc.POPs, len(c.cfg.POPs), "steering is not pointed at every rendered POP")
	for _, fn := range []string{"cdn-warm", "cdn-purge"} {
		env, err := c.env(c.containersOf(fn, "function")[0])
		require.NoError(t, err)
		pops, _, err := steering.AdminConfig(env)
		require.NoError(t, err, fn)
		require.Len(t, pops, len(c.cfg.POPs), fn)
	}
}

// keyLister is what a function or service implements when its typed
// configuration declares its keys (config.KeysOf over its Read).
type keyLister interface{ ConfigKeys() []config.Key }

// Every key a component declares (ConfigKeys) reaches it on the cluster:
// a required key is set to a non-empty value in its rendered environment,
// resolved from what the deploy creates; an optional one is rendered (as
// an optional reference the operator fills in deploy/config.yaml) or is in
// notListed with its reason. Components without ConfigKeys yet are listed
// in the log: for them TestEveryComponentGetsItsSettings (readBy) and
// TestEveryKeyTheCodeReadsIsListed (the scan) are the check.
func TestEveryDeclaredKeyIsSet(t *testing.T) {
	c := loadCluster(t, "overture")
	type comp struct {
		name, kind string
		v          any
	}
	var comps []comp
	for _, e := range functions.All() {
		comps = append(comps, comp{e.Name, "function", e.New()})
	}
	for _, s := range platform.Services() {
		comps = append(comps, comp{s.Name(), "service", s})
	}
	var checked, without []string
	for _, cp := range comps {
		kl, ok := cp.v.(keyLister)
		if !ok {
			without = append(without, cp.name)
			continue
		}
		checked = append(checked, cp.name)
		containers := c.containersOf(cp.name, cp.kind)
		require.Len(t, containers, 1, cp.name)
		env, err := c.env(containers[0])
		require.NoError(t, err, cp.name)
		rendered := map[string]bool{}
		for _, e := range list(containers[0], "env") {
			rendered[str(e.(map[string]any), "name")] = true
		}
		for _, k := range kl.ConfigKeys() {
			_, excused := c.cfg.NotListed[k.Name]
			switch {
			case k.Required:
				// KeysOf reads with an empty map, so a key required only in
				// another mode (SEARCH_DIR, bleve's) shows as required:
				// notListed gives the reason it is not set here.
				if env[k.Name] == "" && !excused {
					t.Errorf("%s %s requires %s, which its rendered environment does not set", cp.kind, cp.name, k.Name)
				}
			case !rendered[k.Name] && !excused:
				t.Errorf("%s %s reads %s, which is neither rendered for it (add it to readBy in deploy/config.yaml) nor in notListed", cp.kind, cp.name, k.Name)
			}
		}
	}
	require.NotEmpty(t, checked)
	t.Logf("checked by ConfigKeys: %v; without ConfigKeys yet: %v", checked, without)
}

// configKeyRE is what a configuration key looks like in the code.
var configKeyRE = regexp.MustCompile(`^[A-Z][A-Z0-9]*(_[A-Z0-9]+)+$`)

// codeKeys collects the string constants that look like configuration keys
// in the non-test Go files of the packages that run on a cluster (not
// hack/, not test helpers), with one file where each appears.
func codeKeys(t *testing.T) map[string]string {
	t.Helper()
	skip := regexp.MustCompile(`^(hack|internal/(e2e|attack|benchmark|testenv)|.*test)(/|$)`)
	keys := map[string]string{}
	err := filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel("../..", path)
		if d.IsDir() {
			if rel != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "node_modules" || skip.MatchString(rel)) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if v, err := strconv.Unquote(lit.Value); err == nil && configKeyRE.MatchString(v) {
					if _, ok := keys[v]; !ok {
						keys[v] = rel
					}
				}
			}
			return true
		})
		return nil
	})
	require.NoError(t, err)
	return keys
}

// deploy/config.yaml is the one list: every configuration key the code
// reads is either in it or in notListed with the reason, and neither
// names a key nothing reads. (The per-component key lists of the typed
// configuration, config.KeysOf, will make this exact per component; this
// scan is over the whole module's non-test code.)
func TestEveryKeyTheCodeReadsIsListed(t *testing.T) {
	c := loadCluster(t, "overture")
	code := codeKeys(t)
	require.Contains(t, code, "DATABASE_URL", "the scan finds nothing: is it looking at the right tree?")
	for k, where := range code {
		_, listed := c.cfg.Setting(k)
		_, excused := c.cfg.NotListed[k]
		if !listed && !excused {
			t.Errorf("%s (read in %s) is neither a setting of deploy/config.yaml nor in its notListed", k, where)
		}
	}
	used := map[string]bool{}
	for _, s := range c.cfg.Settings {
		for _, m := range regexp.MustCompile(`\$\{([A-Z0-9_]+)\}`).FindAllStringSubmatch(s.Value, -1) {
			used[m[1]] = true
		}
	}
	readers := c.readers()
	for _, s := range c.cfg.Settings {
		byDep := slices.ContainsFunc(s.ReadBy, func(r string) bool { return readers[r] == "dependency" })
		if _, ok := code[s.Key]; !ok && !byDep && !used[s.Key] {
			t.Errorf("setting %s: no code reads it, no dependency and no other setting uses it", s.Key)
		}
	}
	for k := range c.cfg.NotListed {
		if _, ok := code[k]; !ok {
			t.Errorf("notListed %s: no code reads it any more; remove it", k)
		}
	}
}

// Every Trigger's broker, subscriber and dead-letter sink, every source's
// sink, every SinkBinding's subject and every EventPolicy's subjects and
// targets resolve to an object the deploy creates.
func TestEveryDestinationResolves(t *testing.T) {
	c := loadCluster(t, "overture")
	resolve := func(where string, ref map[string]any, defaultNS string) {
		t.Helper()
		if len(ref) == 0 {
			return
		}
		ns := str(ref, "namespace")
		if ns == "" {
			ns = defaultNS
		}
		require.Equal(t, c.ns, ns, "%s: points into another namespace", where)
		o := c.find(str(ref, "kind"), str(ref, "name"))
		require.NotNil(t, o, "%s: %s %s is not deployed", where, str(ref, "kind"), str(ref, "name"))
		require.Equal(t, str(ref, "apiVersion"), str(o, "apiVersion"), where)
	}
	accounts := map[string]bool{}
	pings := map[string]bool{}
	var checked int
	for _, obj := range c.rendered {
		switch str(obj, "kind") {
		case "ServiceAccount":
			accounts[identity.ServiceAccount(str(obj, "metadata.namespace"), str(obj, "metadata.name"))] = true
		case "PingSource":
			pings[manifest.RefSubject(manifest.KReference{APIVersion: manifest.SourcesV1, Kind: "PingSource", Name: str(obj, "metadata.name")}, c.ns)] = true
		}
	}
	for _, obj := range c.rendered {
		where := workloadName(obj)
		ns := str(obj, "metadata.namespace")
		switch str(obj, "kind") {
		case "Trigger":
			require.NotNil(t, c.find("Broker", str(obj, "spec.broker")), "%s: broker %s", where, str(obj, "spec.broker"))
			resolve(where+" subscriber", mapAt(obj, "spec.subscriber.ref"), ns)
			resolve(where+" dead-letter sink", mapAt(obj, "spec.delivery.deadLetterSink.ref"), ns)
			checked++
		case "Broker":
			resolve(where+" dead-letter sink", mapAt(obj, "spec.delivery.deadLetterSink.ref"), ns)
			resolve(where+" config", mapAt(obj, "spec.config"), ns)
		case "PingSource", "SinkBinding":
			resolve(where+" sink", mapAt(obj, "spec.sink.ref"), ns)
			checked++
		case "EventPolicy":
			for _, to := range list(obj, "spec.to") {
				resolve(where+" to", mapAt(to.(map[string]any), "ref"), ns)
			}
			for _, from := range list(obj, "spec.from") {
				fm := from.(map[string]any)
				if sub := str(fm, "sub"); sub != "" {
					require.True(t, accounts[sub], "%s allows %s, which is no rendered ServiceAccount", where, sub)
				} else {
					ref := mapAt(fm, "ref")
					resolve(where+" from", ref, ns)
					require.True(t, pings[manifest.RefSubject(manifest.KReference{APIVersion: str(ref, "apiVersion"), Kind: str(ref, "kind"), Name: str(ref, "name")}, c.ns)], where)
				}
			}
		}
		if str(obj, "kind") == "SinkBinding" {
			subj := mapAt(obj, "spec.subject")
			if name := str(subj, "name"); name != "" {
				resolve(where+" subject", subj, ns)
			} else {
				sel := mapAt(subj, "selector.matchLabels")
				matched := 0
				for _, o := range c.rendered {
					if str(o, "apiVersion") == str(subj, "apiVersion") && str(o, "kind") == str(subj, "kind") {
						labels := mapAt(o, "metadata.labels")
						ok := true
						for k, v := range sel {
							ok = ok && labels[k] == v
						}
						if ok {
							matched++
						}
					}
				}
				require.Positive(t, matched, "%s: its selector matches nothing", where)
			}
		}
	}
	require.Greater(t, checked, 15)
	// Every workload that publishes gets K_SINK from a SinkBinding.
	bound := map[string]bool{}
	for _, o := range c.rendered {
		if str(o, "kind") == "SinkBinding" {
			if n := str(o, "spec.subject.name"); n != "" {
				bound[str(o, "spec.subject.kind")+"/"+n] = true
			} else {
				bound[str(o, "spec.subject.kind")+"/*"] = true
			}
		}
	}
	require.True(t, bound["Deployment/cdc"], "the CDC relay gets no K_SINK")
	require.True(t, bound["Service/*"], "the Knative Services get no K_SINK")
}

// Every workload that sends events runs as its own ServiceAccount with a
// projected token for the broker's audience of its namespace.
func TestEveryWorkloadHasItsOwnIdentity(t *testing.T) {
	c := loadCluster(t, "music")
	used := map[string]string{}
	for _, obj := range c.rendered {
		if str(obj, "kind") == "ServiceAccount" {
			require.Equal(t, false, obj["automountServiceAccountToken"], "ServiceAccount %s mounts the API token", str(obj, "metadata.name"))
		}
		if !(str(obj, "apiVersion") == manifest.ServingV1 || workloadName(obj) == "Deployment cdc") {
			continue
		}
		spec := mapAt(obj, "spec.template.spec")
		name := str(obj, "metadata.name")
		sa := str(spec, "serviceAccountName")
		require.NotNil(t, c.find("ServiceAccount", sa), "%s runs as %s, which is not rendered", name, sa)
		if prev, ok := used[sa]; ok {
			t.Errorf("%s and %s share ServiceAccount %s: one identity per workload", prev, name, sa)
		}
		used[sa] = name
		vol := list(spec, "volumes")[0].(map[string]any)
		src := list(vol, "projected.sources")[0].(map[string]any)
		require.Equal(t, "eventing.knative.dev/broker/music/default", str(src, "serviceAccountToken.audience"), name)
		ct := list(spec, "containers")[0].(map[string]any)
		require.Equal(t, str(vol, "name"), str(list(ct, "volumeMounts")[0].(map[string]any), "name"), name)
		require.Contains(t, list(ct, "env"), map[string]any{"name": identity.TokenFileKey, "value": deploy.TokenPath}, name)
	}
	require.Contains(t, used, deploy.S3SourceName, "the S3 event source is not deployed with its identity")
	require.Contains(t, used, deploy.CDCServiceAccount)
}

// NAMESPACE works everywhere: deployed into "music", no object, reference,
// subject, event source filter or setting points at namespace overture.
func TestNamespaceWorksEverywhere(t *testing.T) {
	c := loadCluster(t, "music")
	bad := regexp.MustCompile(`/namespaces/overture/|system:serviceaccount:overture:|\.overture\.svc|broker/overture/`)
	var walk func(where string, v any)
	walk = func(where string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if k == "namespace" && e == "overture" {
					t.Errorf("%s.namespace is still overture", where)
				}
				if k == "namespace" || k == "sub" || k == "source" || k == "audience" || k == "value" || strings.Contains(where, "stringData") || strings.Contains(where, ".data") {
					if s, ok := e.(string); ok && bad.MatchString(s) {
						t.Errorf("%s.%s = %q still names namespace overture", where, k, s)
					}
				}
				walk(where+"."+k, e)
			}
		case []any:
			for i, e := range x {
				walk(fmt.Sprintf("%s[%d]", where, i), e)
			}
		}
	}
	for _, obj := range c.all() {
		require.Equal(t, "music", str(obj, "metadata.namespace"), workloadName(obj))
		walk(workloadName(obj), obj)
	}
	for k, v := range c.values {
		if bad.MatchString(v) {
			t.Errorf("setting %s still names namespace overture", k)
		}
	}
	require.Contains(t, c.values["CDN_POPS"], ".music.svc.cluster.local:8080")
}

// The CDC relay never runs two replicas on one replication slot: a
// Deployment of one replica whose rollouts stop the old pod before the new
// one starts, bound to the broker by a SinkBinding; no ContainerSource
// (whose Deployment rolls with a surge of one).
func TestCDCNeverRunsTwoReaders(t *testing.T) {
	c := loadCluster(t, "overture")
	d := c.find("Deployment", "cdc")
	require.NotNil(t, d)
	require.EqualValues(t, 1, d["spec"].(map[string]any)["replicas"])
	require.Equal(t, "Recreate", str(d, "spec.strategy.type"))
	require.Equal(t, []any{"cdc"}, list(d, "spec.template.spec.containers")[0].(map[string]any)["args"])
	for _, o := range c.all() {
		require.NotEqual(t, "ContainerSource", str(o, "kind"))
		if str(o, "kind") == "HorizontalPodAutoscaler" {
			t.Fatalf("something scales %s", str(o, "spec.scaleTargetRef.name"))
		}
	}
}

// Each POP of deploy/config.yaml is a StatefulSet whose disk tier lives on
// its own PersistentVolume and is bounded below it, with a Service steering
// and cdn-warm/purge reach it at.
func TestPOPsHaveTheirDiskCache(t *testing.T) {
	c := loadCluster(t, "overture")
	require.NotEmpty(t, c.cfg.POPs)
	for _, p := range c.cfg.POPs {
		ss := c.find("StatefulSet", p.Name)
		require.NotNil(t, ss, p.Name)
		require.NotNil(t, c.find("Service", p.Name), "POP %s has no Service", p.Name)
		ct := list(ss, "spec.template.spec.containers")[0].(map[string]any)
		args := ct["args"].([]any)
		i := slices.Index(args, any("-disk-dir"))
		require.Positive(t, i, "POP %s runs without a disk tier", p.Name)
		mount := list(ct, "volumeMounts")[0].(map[string]any)
		require.Equal(t, args[i+1], mount["mountPath"])
		claim := list(ss, "spec.volumeClaimTemplates")[0].(map[string]any)
		require.Equal(t, str(mount, "name"), str(claim, "metadata.name"))
		require.Equal(t, p.Disk, str(claim, "spec.resources.requests.storage"))
		env, err := c.env(ct)
		require.NoError(t, err)
		size, err := p.DiskBytes()
		require.NoError(t, err)
		disk, err := strconv.ParseInt(env["EDGE_DISK_BYTES"], 10, 64)
		require.NoError(t, err)
		require.Less(t, disk, size, "the disk tier must stay below its volume")
		require.Contains(t, c.values["CDN_POPS"], p.Name+"="+p.Region+"="+deploy.POPURL(p.Name, c.ns))
	}
}

// Every scaling choice names a workload the deploy runs and says why.
func TestScalingIsExplained(t *testing.T) {
	c := loadCluster(t, "overture")
	for name, sc := range deploy.Scaling {
		svc := c.find("Service", name)
		require.NotNil(t, svc, "Scaling names %s, which is not deployed", name)
		require.NotEmpty(t, sc.Why, name)
		if sc.ContainerConcurrency > 0 {
			require.EqualValues(t, sc.ContainerConcurrency, mapAt(svc, "spec.template.spec")["containerConcurrency"], name)
		}
		ann := mapAt(svc, "spec.template.metadata.annotations")
		lo, _ := strconv.Atoi(fmt.Sprint(ann["autoscaling.knative.dev/min-scale"]))
		hi, err := strconv.Atoi(fmt.Sprint(ann["autoscaling.knative.dev/max-scale"]))
		if err == nil {
			require.LessOrEqual(t, lo, hi, name)
		}
	}
}

// Every hack/ script passes shellcheck. shellcheck comes with `make deps`
// (hack/deps/base.sh); without it this test fails rather than skips.
func TestShellScriptsPassShellcheck(t *testing.T) {
	bin, err := exec.LookPath("shellcheck")
	require.NoError(t, err, "shellcheck is not installed: run `make deps` (hack/deps/base.sh installs it)")
	var scripts []string
	require.NoError(t, filepath.WalkDir("../../hack", func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".sh") {
			scripts = append(scripts, path)
		}
		return err
	}))
	require.Contains(t, scripts, filepath.Join("../../hack", "deploy.sh"))
	out, err := exec.Command(bin, append([]string{"--format=gcc"}, scripts...)...).CombinedOutput()
	require.NoError(t, err, "shellcheck:\n%s", out)
}

// kind-config.yaml and .ko.yaml: the image builds for both platforms.
func TestImagesBuildForBothPlatforms(t *testing.T) {
	b, err := os.ReadFile("../../.ko.yaml")
	require.NoError(t, err)
	for _, p := range []string{"linux/amd64", "linux/arm64"} {
		require.Contains(t, string(b), "- "+p)
	}
	sh, err := os.ReadFile("../../hack/deploy.sh")
	require.NoError(t, err)
	require.Contains(t, string(sh), `ko resolve --platform="$KO_PLATFORMS"`)
	require.Contains(t, string(sh), "KO_PLATFORMS=linux/amd64,linux/arm64")
}

// `overture deploy config`'s choice of values: what the operator gives
// wins, then what the cluster holds, then a fresh random secret — never a
// development value of `make run` — then the default; a required setting
// left empty is an error naming its key and no value.
func TestDeployConfigValues(t *testing.T) {
	cfg, err := deploy.LoadConfig("../../deploy/config.yaml")
	require.NoError(t, err)
	none := func(string) (string, bool) { return "", false }
	a, err := cfg.Values("overture", none, nil, nil)
	require.NoError(t, err)
	b, err := cfg.Values("overture", none, nil, nil)
	require.NoError(t, err)
	platformSrc, err := os.ReadFile("../../internal/platform/config.go")
	require.NoError(t, err)
	for _, s := range cfg.Settings {
		if s.Generate == "" {
			continue
		}
		require.NotEqual(t, a[s.Key], b[s.Key], "%s is not random", s.Key)
		require.GreaterOrEqual(t, len(a[s.Key]), 32, "%s is shorter than 16 random bytes", s.Key)
		require.NotContains(t, string(platformSrc), a[s.Key])
	}
	// Defaults are built from the generated values.
	require.Equal(t, "postgres://overture:"+a["POSTGRES_PASSWORD"]+"@postgres:5432/overture?sslmode=disable", a["DATABASE_URL"])
	require.Equal(t, "k1:"+a["CDN_SIGNING_SECRET"], a["CDN_SIGNING_KEYS"])

	// The cluster's values are kept; the operator's win over them.
	have := map[deploy.Ref]string{{Kind: "secret", Name: "overture-postgres", Key: "password"}: "kept-password"}
	given := map[string]string{"REDIS_URL": "rediss://managed:6380/0"}
	c, err := cfg.Values("music", func(k string) (string, bool) { v, ok := given[k]; return v, ok }, have, nil)
	require.NoError(t, err)
	require.Equal(t, "kept-password", c["POSTGRES_PASSWORD"])
	require.Contains(t, c["DATABASE_URL"], ":kept-password@")
	require.Equal(t, "rediss://managed:6380/0", c["REDIS_URL"])
	require.Equal(t, "http://gateway.music.127.0.0.1.sslip.io", c["PUBLIC_BASE_URL"])

	// What the cluster holds comes back from kubectl's JSON.
	back, err := deploy.ExistingValues([]byte(`{"items": [
		{"kind": "Secret", "metadata": {"name": "overture-postgres"}, "data": {"password": "a2VwdA=="}},
		{"kind": "ConfigMap", "metadata": {"name": "overture-s3"}, "data": {"region": "eu-north-1"}}]}`))
	require.NoError(t, err)
	require.Equal(t, map[deploy.Ref]string{
		{Kind: "secret", Name: "overture-postgres", Key: "password"}: "kept",
		{Kind: "configMap", Name: "overture-s3", Key: "region"}:      "eu-north-1",
	}, back)

	// A required setting without value, default or generator is refused by
	// name, and the error carries no secret.
	broken, err := deploy.ParseConfig([]byte("settings:\n- {key: A_URL, in: 'secret:x:url', readBy: [auth]}\n"))
	require.ErrorContains(t, err, "A_URL")
	require.NotNil(t, broken)
	cfg2, err := deploy.ParseConfig([]byte("settings:\n- {key: A_URL, in: 'secret:x:url', value: '${B}', readBy: [auth]}\n- {key: B, in: 'secret:x:b', optional: true, readBy: [auth]}\n"))
	require.NoError(t, err)
	_, err = cfg2.Values("overture", none, nil, nil)
	require.ErrorContains(t, err, "A_URL")

	// The env file of OVERTURE_ENV.
	env, err := deploy.ParseEnvFile(strings.NewReader("# managed\nDATABASE_URL=postgres://u:p=w@db/x\n\nexport REDIS_URL=redis://r\n"))
	require.NoError(t, err)
	require.Equal(t, map[string]string{"DATABASE_URL": "postgres://u:p=w@db/x", "REDIS_URL": "redis://r"}, env)
	_, err = deploy.ParseEnvFile(strings.NewReader("not a line\n"))
	require.ErrorContains(t, err, "line 1")
}

// deploy/config.yaml refuses what would deploy wrongly.
func TestParseConfigRefuses(t *testing.T) {
	for name, doc := range map[string]string{
		"TwoSettingsOneKey":    "settings:\n- {key: A, in: 'secret:x:k', value: v, readBy: []}\n- {key: B, in: 'secret:x:k', value: v, readBy: []}\n",
		"KeyListedTwice":       "settings:\n- {key: A, in: 'secret:x:a', value: v, readBy: []}\n- {key: A, in: 'secret:x:b', value: v, readBy: []}\n",
		"GeneratedInConfigMap": "settings:\n- {key: A, in: 'configMap:x:a', generate: hex32, readBy: []}\n",
		"UnknownGenerator":     "settings:\n- {key: A, in: 'secret:x:a', generate: dev, readBy: []}\n",
		"BadRef":               "settings:\n- {key: A, in: 'vault:x:a', value: v, readBy: []}\n",
		"UnknownVariable":      "settings:\n- {key: A, in: 'secret:x:a', value: '${NOPE}', readBy: []}\n",
		"UnknownField":         "settings:\n- {key: A, in: 'secret:x:a', value: v, readers: []}\n",
		"BadPOPDisk":           "pops:\n- {name: p, region: r, disk: lots}\n",
		"ListedAndNotListed":   "settings:\n- {key: A, in: 'secret:x:a', value: v, readBy: []}\nnotListed: {A: why}\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := deploy.ParseConfig([]byte(doc))
			require.Error(t, err)
		})
	}
}
