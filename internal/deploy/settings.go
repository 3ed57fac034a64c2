package deploy

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// Why one list: a cluster fails in the gap between what a Service references
// and what someone created. deploy/config.yaml names every setting once —
// its key, the Secret or ConfigMap key it lands in, who reads it and its
// value — and both the workloads (Render) and the Secrets and ConfigMaps
// (ConfigObjects) are generated from it, so the two cannot disagree.

// Config is deploy/config.yaml.
type Config struct {
	Settings []Setting `json:"settings"`
	POPs     []POP     `json:"pops"`
	// NotListed names keys the code reads that the deploy does not set, with
	// the reason (development switches, test knobs, what Knative sets).
	NotListed map[string]string `json:"notListed"`
}

// Setting is one configuration key.
type Setting struct {
	Key string `json:"key"`
	// In is where the value lands: secret:NAME:KEY or configMap:NAME:KEY.
	In string `json:"in"`
	// Value is the default; ${KEY} is another setting, ${NAMESPACE} the
	// namespace, ${POPS} the rendered POPs.
	Value string `json:"value,omitempty"`
	// Generate makes a random value when none is given or kept: hex16,
	// hex32 (that many random bytes, hex) or base64-32.
	Generate string `json:"generate,omitempty"`
	// Optional settings may stay empty (the code has a default, or the
	// feature is off); their env entries are optional references.
	Optional bool     `json:"optional,omitempty"`
	ReadBy   []string `json:"readBy"`
	Doc      string   `json:"doc,omitempty"`
}

// POP is one CDN edge point of presence the render deploys.
type POP struct {
	Name        string `json:"name"`
	Region      string `json:"region"`
	Disk        string `json:"disk"` // PersistentVolumeClaim size (Kubernetes quantity)
	MemoryBytes int64  `json:"memoryBytes"`
}

var sizeRE = regexp.MustCompile(`^([1-9][0-9]*)(Mi|Gi|Ti)$`)

// DiskBytes is Disk in bytes (Mi, Gi or Ti).
func (p POP) DiskBytes() (int64, error) {
	m := sizeRE.FindStringSubmatch(p.Disk)
	if m == nil {
		return 0, fmt.Errorf("pop %s: disk %q: want a size such as 10Gi", p.Name, p.Disk)
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n << map[string]int{"Mi": 20, "Gi": 30, "Ti": 40}[m[2]], nil
}

// Ref is a key in a Secret or ConfigMap.
type Ref struct {
	Kind string // "secret" or "configMap"
	Name string
	Key  string
}

func (r Ref) String() string { return r.Kind + ":" + r.Name + ":" + r.Key }

// Groups of readers a setting can name in readBy.
const (
	ReadByFunctions = "functions"
	ReadByServices  = "services"
)

var (
	keyRE   = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)
	dataKey = regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)
	varRE   = regexp.MustCompile(`\$\{([A-Z][A-Z0-9_]*)\}`)
)

// ParseRef parses secret:NAME:KEY or configMap:NAME:KEY.
func ParseRef(s string) (Ref, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 || (parts[0] != "secret" && parts[0] != "configMap") || !dns1123.MatchString(parts[1]) || !dataKey.MatchString(parts[2]) {
		return Ref{}, fmt.Errorf("%q: want secret:NAME:KEY or configMap:NAME:KEY", s)
	}
	return Ref{Kind: parts[0], Name: parts[1], Key: parts[2]}, nil
}

var dns1123 = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// LoadConfig reads and checks deploy/config.yaml.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("deploy config: %w", err)
	}
	c, err := ParseConfig(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// ParseConfig decodes a config strictly (an unknown field is an error) and
// checks it: unique keys and refs, known generators, ${KEY}s that exist.
func ParseConfig(b []byte) (*Config, error) {
	var c Config
	if err := yaml.UnmarshalStrict(b, &c); err != nil {
		return nil, err
	}
	var errs []error
	keys := map[string]bool{}
	refs := map[Ref]string{}
	for _, s := range c.Settings {
		if !keyRE.MatchString(s.Key) {
			errs = append(errs, fmt.Errorf("setting %q: key must be an environment variable name", s.Key))
		}
		if keys[s.Key] {
			errs = append(errs, fmt.Errorf("setting %s listed twice", s.Key))
		}
		keys[s.Key] = true
		r, err := ParseRef(s.In)
		if err != nil {
			errs = append(errs, fmt.Errorf("setting %s: in: %w", s.Key, err))
		} else if prev, ok := refs[r]; ok {
			errs = append(errs, fmt.Errorf("settings %s and %s both land in %s", prev, s.Key, r))
		} else {
			refs[r] = s.Key
		}
		switch s.Generate {
		case "", "hex16", "hex32", "base64-32":
		default:
			errs = append(errs, fmt.Errorf("setting %s: generate %q: want hex16, hex32 or base64-32", s.Key, s.Generate))
		}
		if s.Generate != "" && r.Kind != "secret" {
			errs = append(errs, fmt.Errorf("setting %s: a generated value is a secret; put it in a Secret", s.Key))
		}
		if s.Generate != "" && s.Value != "" {
			errs = append(errs, fmt.Errorf("setting %s: both value and generate", s.Key))
		}
		if !s.Optional && s.Generate == "" && s.Value == "" {
			errs = append(errs, fmt.Errorf("setting %s: required, but has neither value nor generate (make it optional, or give a default)", s.Key))
		}
		if _, ok := c.NotListed[s.Key]; ok {
			errs = append(errs, fmt.Errorf("setting %s is also in notListed", s.Key))
		}
	}
	for _, s := range c.Settings {
		for _, m := range varRE.FindAllStringSubmatch(s.Value, -1) {
			if m[1] != "NAMESPACE" && m[1] != "POPS" && !keys[m[1]] {
				errs = append(errs, fmt.Errorf("setting %s: value refers to ${%s}, which is no setting", s.Key, m[1]))
			}
		}
	}
	pops := map[string]bool{}
	for _, p := range c.POPs {
		if !dns1123.MatchString(p.Name) || p.Region == "" || pops[p.Name] {
			errs = append(errs, fmt.Errorf("pop %q: needs a unique DNS-1123 name and a region", p.Name))
		}
		pops[p.Name] = true
		if _, err := p.DiskBytes(); err != nil {
			errs = append(errs, fmt.Errorf("pop %s: disk %q is not a size", p.Name, p.Disk))
		}
	}
	return &c, errors.Join(errs...)
}

// Setting returns the setting of key.
func (c *Config) Setting(key string) (Setting, bool) {
	i := slices.IndexFunc(c.Settings, func(s Setting) bool { return s.Key == key })
	if i < 0 {
		return Setting{}, false
	}
	return c.Settings[i], true
}

// Ref returns where s lands (ParseConfig has checked it).
func (s Setting) Ref() Ref {
	r, _ := ParseRef(s.In)
	return r
}

// ReadBy reports whether component (of kind "function", "service" or
// another role) reads s.
func (s Setting) ReadByComponent(component, kind string) bool {
	for _, r := range s.ReadBy {
		if r == component || (r == ReadByFunctions && kind == "function") || (r == ReadByServices && kind == "service") {
			return true
		}
	}
	return false
}

// For returns the settings component reads, in list order.
func (c *Config) For(component, kind string) []Setting {
	if c == nil {
		return nil
	}
	var out []Setting
	for _, s := range c.Settings {
		if s.ReadByComponent(component, kind) {
			out = append(out, s)
		}
	}
	return out
}

// POPURL is where a rendered POP answers inside the cluster.
func POPURL(name, namespace string) string {
	return "http://" + name + "." + namespace + ".svc.cluster.local:8080"
}

// popsValue is ${POPS}: name=region=url of every POP.
func (c *Config) popsValue(namespace string) string {
	var parts []string
	for _, p := range c.POPs {
		parts = append(parts, p.Name+"="+p.Region+"="+POPURL(p.Name, namespace))
	}
	return strings.Join(parts, ",")
}

// Values resolves every setting for namespace, in the order of the package
// comment of deploy/config.yaml: given (the operator's environment), then
// existing (what the cluster's Secrets and ConfigMaps hold, by Ref), then a
// generated value (random from rnd), then the default with its ${KEY}s
// expanded. A required setting that ends up empty is an error naming it;
// nothing secret is ever put into an error.
func (c *Config) Values(namespace string, given func(string) (string, bool), existing map[Ref]string, rnd io.Reader) (map[string]string, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	vals := map[string]string{}
	var errs []error
	pending := map[string]Setting{}
	for _, s := range c.Settings {
		if v, ok := given(s.Key); ok && v != "" {
			vals[s.Key] = v
			continue
		}
		if v := existing[s.Ref()]; v != "" {
			vals[s.Key] = v
			continue
		}
		if s.Generate != "" {
			v, err := generate(s.Generate, rnd)
			if err != nil {
				return nil, fmt.Errorf("generate %s: %w", s.Key, err)
			}
			vals[s.Key] = v
			continue
		}
		pending[s.Key] = s
	}
	// Defaults may refer to each other: expand in dependency order.
	var expand func(key string, seen []string) string
	expand = func(key string, seen []string) string {
		if v, ok := vals[key]; ok {
			return v
		}
		s, ok := pending[key]
		if !ok {
			return ""
		}
		if slices.Contains(seen, key) {
			errs = append(errs, fmt.Errorf("setting %s: its default refers to itself (%s)", key, strings.Join(append(seen, key), " → ")))
			vals[key] = ""
			return ""
		}
		v := varRE.ReplaceAllStringFunc(s.Value, func(m string) string {
			name := varRE.FindStringSubmatch(m)[1]
			switch name {
			case "NAMESPACE":
				return namespace
			case "POPS":
				return c.popsValue(namespace)
			}
			return expand(name, append(seen, key))
		})
		vals[key] = v
		return v
	}
	for _, s := range c.Settings {
		expand(s.Key, nil)
		if vals[s.Key] == "" && !s.Optional {
			errs = append(errs, fmt.Errorf("setting %s (%s) is required and empty: set %s in the environment or in OVERTURE_ENV's file", s.Key, s.In, s.Key))
		}
	}
	return vals, errors.Join(errs...)
}

func generate(kind string, rnd io.Reader) (string, error) {
	n := 32
	if kind == "hex16" {
		n = 16
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(rnd, b); err != nil {
		return "", err
	}
	if kind == "base64-32" {
		return base64.StdEncoding.EncodeToString(b), nil
	}
	return hex.EncodeToString(b), nil
}

// ConfigRole labels the Secrets and ConfigMaps ConfigObjects makes, so the
// deploy script can read them back (existing values are kept).
const ConfigRole = "config"

// ConfigObjects returns the Secrets and ConfigMaps that hold vals, one per
// name in deploy/config.yaml, sorted; an empty optional value is left out
// (its env reference is optional: the variable is then unset).
func (c *Config) ConfigObjects(namespace string, vals map[string]string) []Object {
	data := map[Ref]string{}
	for _, s := range c.Settings {
		if v := vals[s.Key]; v != "" {
			data[s.Ref()] = v
		}
	}
	type obj struct{ kind, name string }
	byObj := map[obj]map[string]any{}
	for _, s := range c.Settings {
		r := s.Ref()
		o := obj{r.Kind, r.Name}
		if byObj[o] == nil {
			byObj[o] = map[string]any{}
		}
		if v, ok := data[r]; ok {
			byObj[o][r.Key] = v
		}
	}
	keys := make([]obj, 0, len(byObj))
	for o := range byObj {
		keys = append(keys, o)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].kind != keys[j].kind {
			return keys[i].kind > keys[j].kind // secrets, then configMaps
		}
		return keys[i].name < keys[j].name
	})
	var out []Object
	for _, o := range keys {
		m := Object{"apiVersion": "v1", "metadata": meta(o.name, namespace, ConfigRole)}
		if o.kind == "secret" {
			m["kind"], m["type"], m["stringData"] = "Secret", "Opaque", byObj[o]
		} else {
			m["kind"], m["data"] = "ConfigMap", byObj[o]
		}
		out = append(out, m)
	}
	return out
}

// ParseEnvFile reads KEY=value lines (blank lines and # comments skipped;
// no quoting or expansion: the value is the rest of the line).
func ParseEnvFile(r io.Reader) (map[string]string, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(strings.TrimPrefix(k, "export "))
		if !ok || !keyRE.MatchString(k) {
			return nil, fmt.Errorf("line %d: want KEY=value", i+1)
		}
		out[k] = v
	}
	return out, nil
}

// ExistingValues reads the Secrets and ConfigMaps of a `kubectl get -o
// json` list (Secrets' data is base64, as the API returns it).
func ExistingValues(b []byte) (map[Ref]string, error) {
	var list struct {
		Items []struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
			Data map[string]string `json:"data"`
		} `json:"items"`
	}
	if err := yaml.Unmarshal(b, &list); err != nil {
		return nil, fmt.Errorf("existing objects: %w", err)
	}
	out := map[Ref]string{}
	for _, it := range list.Items {
		for k, v := range it.Data {
			switch it.Kind {
			case "Secret":
				raw, err := base64.StdEncoding.DecodeString(v)
				if err != nil {
					return nil, fmt.Errorf("existing Secret %s key %s: not base64", it.Metadata.Name, k)
				}
				out[Ref{"secret", it.Metadata.Name, k}] = string(raw)
			case "ConfigMap":
				out[Ref{"configMap", it.Metadata.Name, k}] = v
			}
		}
	}
	return out, nil
}
