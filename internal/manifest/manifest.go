// Package manifest reads the Knative YAML that deploys Overture to a cluster —
// Brokers, their ConfigMaps, Triggers, PingSources, EventPolicies and each
// function's func.yaml — into typed, validated objects.
//
// The embedded broker obeys exactly these files, so that what runs on a laptop
// and what runs on Knative cannot drift apart. Validation is therefore strict
// and mirrors what the Knative webhooks would reject (unknown fields, unknown
// filter dialects, malformed ISO-8601 durations, negative retries, triggers on
// brokers that do not exist), with errors that name the file and the object.
package manifest

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"sigs.k8s.io/yaml"
)

// DefaultNamespace is the namespace of objects whose metadata has none (the
// namespace `make deploy` applies them into).
const DefaultNamespace = "overture"

// Well-known API versions, kinds and annotations.
const (
	EventingV1 = "eventing.knative.dev/v1"
	SourcesV1  = "sources.knative.dev/v1"
	ServingV1  = "serving.knative.dev/v1"

	BrokerClassAnnotation   = "eventing.knative.dev/broker.class"
	DeliveryOrderAnnotation = "kafka.eventing.knative.dev/delivery.order"
	// ParallelismAnnotation sets how many deliveries of a Trigger the
	// embedded broker runs at once (its default otherwise), like the
	// RabbitMQ broker's rabbitmq.eventing.knative.dev/parallelism. A
	// subscriber that batches (the search indexer) needs many in flight.
	ParallelismAnnotation = "eventing.overture.music/parallelism"

	BackoffLinear      = "linear"
	BackoffExponential = "exponential"
)

// TypeMeta is apiVersion and kind.
type TypeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
}

// ObjectMeta is the part of Kubernetes metadata the manifests use.
type ObjectMeta struct {
	Name        string            `json:"name"`
	Namespace   string            `json:"namespace,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// KReference points at another object (a Knative duck KReference).
type KReference struct {
	APIVersion string `json:"apiVersion,omitempty"`
	Kind       string `json:"kind"`
	Name       string `json:"name"`
	Namespace  string `json:"namespace,omitempty"`
}

// Destination is a Knative duck Destination: a ref, a URI, or a ref plus a
// relative URI.
type Destination struct {
	Ref      *KReference `json:"ref,omitempty"`
	URI      string      `json:"uri,omitempty"`
	CACerts  string      `json:"CACerts,omitempty"`
	Audience string      `json:"audience,omitempty"`
}

// String names the destination for logs and the knativeerrordest extension:
// the in-cluster URL a Knative Service ref resolves to, or the URI.
func (d Destination) String() string {
	if d.Ref != nil {
		ns := d.Ref.Namespace
		if ns == "" {
			ns = DefaultNamespace
		}
		return "http://" + d.Ref.Name + "." + ns + ".svc.cluster.local" + d.URI
	}
	return d.URI
}

// Delivery is a Knative DeliverySpec.
type Delivery struct {
	DeadLetterSink *Destination `json:"deadLetterSink,omitempty"`
	Retry          *int32       `json:"retry,omitempty"`
	BackoffPolicy  string       `json:"backoffPolicy,omitempty"`
	BackoffDelay   *Duration    `json:"backoffDelay,omitempty"`
	Timeout        *Duration    `json:"timeout,omitempty"`
	RetryAfterMax  *Duration    `json:"retryAfterMax,omitempty"`
}

// Retries is spec.retry (0 when unset).
func (d *Delivery) Retries() int {
	if d == nil || d.Retry == nil {
		return 0
	}
	return int(*d.Retry)
}

// Backoff returns how long to wait before retry number n (1-based), as
// Knative computes it: linear delay*n, exponential delay*2^n.
func (d *Delivery) Backoff(n int) time.Duration {
	if d == nil || d.BackoffDelay == nil {
		return 0
	}
	delay := d.BackoffDelay.D
	if d.BackoffPolicy == BackoffLinear {
		return delay * time.Duration(n)
	}
	if n > 30 {
		n = 30
	}
	return delay * time.Duration(1<<n)
}

// TimeoutOr returns spec.timeout, or def when unset.
func (d *Delivery) TimeoutOr(def time.Duration) time.Duration {
	if d == nil || d.Timeout == nil || d.Timeout.D <= 0 {
		return def
	}
	return d.Timeout.D
}

// Broker is an eventing.knative.dev/v1 Broker.
type Broker struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta `json:"metadata"`
	Spec     struct {
		Config   *KReference `json:"config,omitempty"`
		Delivery *Delivery   `json:"delivery,omitempty"`
	} `json:"spec"`
	File string `json:"-"`
}

// Class is the broker.class annotation ("Kafka" for Overture's brokers).
func (b *Broker) Class() string { return b.Metadata.Annotations[BrokerClassAnnotation] }

// ConfigMap is a core/v1 ConfigMap (the Kafka broker's configuration).
type ConfigMap struct {
	TypeMeta   `json:",inline"`
	Metadata   ObjectMeta        `json:"metadata"`
	Data       map[string]string `json:"data,omitempty"`
	BinaryData map[string]string `json:"binaryData,omitempty"`
	File       string            `json:"-"`
}

// Trigger is an eventing.knative.dev/v1 Trigger.
type Trigger struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta `json:"metadata"`
	Spec     struct {
		Broker string `json:"broker"`
		Filter *struct {
			Attributes map[string]string `json:"attributes,omitempty"`
		} `json:"filter,omitempty"`
		Filters    []FilterSpec `json:"filters,omitempty"`
		Subscriber Destination  `json:"subscriber"`
		Delivery   *Delivery    `json:"delivery,omitempty"`
	} `json:"spec"`
	File string `json:"-"`

	filter Filter
}

// Key is "namespace/name", unique among triggers.
func (t *Trigger) Key() string { return t.Metadata.Namespace + "/" + t.Metadata.Name }

// Ordered reports the kafka.eventing.knative.dev/delivery.order: ordered annotation.
func (t *Trigger) Ordered() bool { return t.Metadata.Annotations[DeliveryOrderAnnotation] == "ordered" }

// Parallelism is the ParallelismAnnotation's value, 0 when unset.
func (t *Trigger) Parallelism() (int, error) {
	v, ok := t.Metadata.Annotations[ParallelismAnnotation]
	if !ok {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 4096 {
		return 0, fmt.Errorf("annotation %s must be a whole number from 1 to 4096, got %q", ParallelismAnnotation, v)
	}
	return n, nil
}

// Match reports whether the trigger wants e: spec.filters when present (it
// overrides spec.filter), else spec.filter.attributes, else everything.
func (t *Trigger) Match(e event.Event) bool {
	if t.filter == nil {
		if err := t.compile(); err != nil {
			return false
		}
	}
	return t.filter.Match(e)
}

func (t *Trigger) compile() error {
	if len(t.Spec.Filters) > 0 {
		f, err := CompileFilters(t.Spec.Filters)
		if err != nil {
			return err
		}
		t.filter = f
		return nil
	}
	if t.Spec.Filter != nil {
		t.filter = CompileAttributes(t.Spec.Filter.Attributes)
		return nil
	}
	t.filter = MatchAll
	return nil
}

// PingSource is a sources.knative.dev/v1 PingSource.
type PingSource struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta `json:"metadata"`
	Spec     struct {
		Schedule    string      `json:"schedule,omitempty"`
		Timezone    string      `json:"timezone,omitempty"`
		ContentType string      `json:"contentType,omitempty"`
		Data        string      `json:"data,omitempty"`
		DataBase64  string      `json:"dataBase64,omitempty"`
		Sink        Destination `json:"sink"`
		CEOverrides *struct {
			Extensions map[string]string `json:"extensions,omitempty"`
		} `json:"ceOverrides,omitempty"`
	} `json:"spec"`
	File string `json:"-"`
}

// Source is the CloudEvents source a PingSource's events carry.
func (p *PingSource) Source() string {
	return "/apis/v1/namespaces/" + p.Metadata.Namespace + "/pingsources/" + p.Metadata.Name
}

// ScheduleOrDefault is spec.schedule, "* * * * *" when empty (Knative's default).
func (p *PingSource) ScheduleOrDefault() string {
	if p.Spec.Schedule == "" {
		return "* * * * *"
	}
	return p.Spec.Schedule
}

// Func is a Knative func.yaml.
type Func struct {
	SpecVersion string          `json:"specVersion"`
	Name        string          `json:"name"`
	Domain      string          `json:"domain,omitempty"`
	Runtime     string          `json:"runtime"`
	Registry    string          `json:"registry,omitempty"`
	Image       string          `json:"image,omitempty"`
	ImageDigest string          `json:"imageDigest,omitempty"`
	Namespace   string          `json:"namespace,omitempty"`
	Created     string          `json:"created"`
	Invoke      string          `json:"invoke,omitempty"`
	Build       json.RawMessage `json:"build,omitempty"`
	Run         struct {
		Envs         []FuncEnv       `json:"envs,omitempty"`
		Volumes      json.RawMessage `json:"volumes,omitempty"`
		StartTimeout string          `json:"startTimeout,omitempty"`
	} `json:"run,omitempty"`
	Deploy struct {
		Namespace          string            `json:"namespace,omitempty"`
		Image              string            `json:"image,omitempty"`
		Annotations        map[string]string `json:"annotations,omitempty"`
		Labels             json.RawMessage   `json:"labels,omitempty"`
		ServiceAccountName string            `json:"serviceAccountName,omitempty"`
		HealthEndpoints    json.RawMessage   `json:"healthEndpoints,omitempty"`
		Options            struct {
			Scale *struct {
				Min         *int64   `json:"min,omitempty"`
				Max         *int64   `json:"max,omitempty"`
				Metric      string   `json:"metric,omitempty"`
				Target      *float64 `json:"target,omitempty"`
				Utilization *float64 `json:"utilization,omitempty"`
			} `json:"scale,omitempty"`
			Resources json.RawMessage `json:"resources,omitempty"`
		} `json:"options,omitempty"`
	} `json:"deploy,omitempty"`
	File string `json:"-"`
}

// FuncEnv is one run.envs entry.
type FuncEnv struct {
	Name  string `json:"name,omitempty"`
	Value string `json:"value"`
}

// Object is any other Kubernetes object found beside the ones above (a Knative
// Service, a SinkBinding …): kept so tests can check it is well formed.
type Object struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta `json:"metadata"`
	File     string     `json:"-"`
}

// Set is everything LoadDir found.
type Set struct {
	Brokers       []*Broker
	ConfigMaps    []*ConfigMap
	Triggers      []*Trigger
	PingSources   []*PingSource
	EventPolicies []*EventPolicy
	Funcs         []*Func
	Others        []*Object
}

// Broker finds a broker by namespace and name.
func (s *Set) Broker(namespace, name string) (*Broker, bool) {
	for _, b := range s.Brokers {
		if b.Metadata.Namespace == namespace && b.Metadata.Name == name {
			return b, true
		}
	}
	return nil, false
}

// ConfigMap finds a ConfigMap by namespace and name.
func (s *Set) ConfigMap(namespace, name string) (*ConfigMap, bool) {
	for _, c := range s.ConfigMaps {
		if c.Metadata.Namespace == namespace && c.Metadata.Name == name {
			return c, true
		}
	}
	return nil, false
}

// Func finds a func.yaml by function name.
func (s *Set) Func(name string) (*Func, bool) {
	for _, f := range s.Funcs {
		if f.Name == name {
			return f, true
		}
	}
	return nil, false
}

// LoadDir reads every *.yaml and *.yml below the given directories (testdata
// directories excepted): func.yaml files as functions, the others as
// multi-document Kubernetes manifests. It validates each object and the
// references between them and returns every problem found, joined.
func LoadDir(dirs ...string) (*Set, error) {
	var files []string
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if path != dir && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
					return filepath.SkipDir
				}
				return nil
			}
			if ext := filepath.Ext(path); ext == ".yaml" || ext == ".yml" {
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("manifest: read %s: %w", dir, err)
		}
	}
	sort.Strings(files)
	set := &Set{}
	var errs []error
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			errs = append(errs, fmt.Errorf("manifest: %w", err))
			continue
		}
		if base := filepath.Base(f); base == "func.yaml" || base == "func.yml" {
			if err := set.addFunc(f, b); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		if err := set.Add(f, b); err != nil {
			errs = append(errs, err)
		}
	}
	if err := set.Validate(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return set, nil
}

var docSep = regexp.MustCompile(`(?m)^---[ \t]*(#.*)?$`)

// Add parses one multi-document YAML file's content into the set, validating
// each object on its own (references are checked by Validate).
func (s *Set) Add(file string, content []byte) error {
	var errs []error
	for i, doc := range docSep.Split(string(content), -1) {
		where := fmt.Sprintf("%s (document %d)", file, i+1)
		if err := s.addDoc(where, []byte(doc)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (s *Set) addDoc(where string, doc []byte) error {
	js, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return fmt.Errorf("%s: not YAML: %w", where, err)
	}
	if string(js) == "null" {
		return nil // empty document or comments only
	}
	var head Object
	if err := json.Unmarshal(js, &head); err != nil {
		return fmt.Errorf("%s: not a Kubernetes object: %w", where, err)
	}
	if head.APIVersion == "" || head.Kind == "" {
		return fmt.Errorf("%s: apiVersion and kind are required", where)
	}
	if head.Metadata.Name == "" {
		return fmt.Errorf("%s: %s has no metadata.name", where, head.Kind)
	}
	if !dns1123(head.Metadata.Name) {
		return fmt.Errorf("%s: %s name %q is not a DNS-1123 label", where, head.Kind, head.Metadata.Name)
	}
	where = fmt.Sprintf("%s, %s %s", where, head.Kind, head.Metadata.Name)
	strict := func(v any) error {
		if err := yaml.UnmarshalStrict(doc, v); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		return nil
	}
	nsDefault := func(m *ObjectMeta) {
		if m.Namespace == "" {
			m.Namespace = DefaultNamespace
		}
	}
	switch {
	case head.APIVersion == EventingV1 && head.Kind == "Broker":
		b := &Broker{File: where}
		if err := strict(b); err != nil {
			return err
		}
		nsDefault(&b.Metadata)
		if err := b.validate(); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		s.Brokers = append(s.Brokers, b)
	case head.APIVersion == EventingV1 && head.Kind == "Trigger":
		t := &Trigger{File: where}
		if err := strict(t); err != nil {
			return err
		}
		nsDefault(&t.Metadata)
		if err := t.validate(); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		s.Triggers = append(s.Triggers, t)
	case head.APIVersion == SourcesV1 && head.Kind == "PingSource":
		p := &PingSource{File: where}
		if err := strict(p); err != nil {
			return err
		}
		nsDefault(&p.Metadata)
		if err := p.validate(); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		s.PingSources = append(s.PingSources, p)
	case head.APIVersion == EventingV1Alpha1 && head.Kind == "EventPolicy":
		p := &EventPolicy{File: where}
		if err := strict(p); err != nil {
			return err
		}
		nsDefault(&p.Metadata)
		if err := p.validate(); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		s.EventPolicies = append(s.EventPolicies, p)
	case head.Kind == "EventPolicy" && strings.HasPrefix(head.APIVersion, "eventing.knative.dev/"):
		return fmt.Errorf("%s: EventPolicy must have apiVersion %s, not %s", where, EventingV1Alpha1, head.APIVersion)
	case head.APIVersion == "v1" && head.Kind == "ConfigMap":
		c := &ConfigMap{File: where}
		if err := strict(c); err != nil {
			return err
		}
		nsDefault(&c.Metadata)
		s.ConfigMaps = append(s.ConfigMaps, c)
	case strings.HasSuffix(head.APIVersion, "knative.dev/v1") && (head.Kind == "Broker" || head.Kind == "Trigger" || head.Kind == "PingSource"):
		return fmt.Errorf("%s: %s must have apiVersion %s, not %s", where, head.Kind, map[string]string{"Broker": EventingV1, "Trigger": EventingV1, "PingSource": SourcesV1}[head.Kind], head.APIVersion)
	default:
		o := head
		o.File = where
		nsDefault(&o.Metadata)
		s.Others = append(s.Others, &o)
	}
	return nil
}

func (s *Set) addFunc(file string, content []byte) error {
	f := &Func{File: file}
	if err := yaml.UnmarshalStrict(content, f); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	if err := f.validate(); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	s.Funcs = append(s.Funcs, f)
	return nil
}

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

func dns1123(s string) bool { return len(s) <= 63 && dnsLabel.MatchString(s) }
