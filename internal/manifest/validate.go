package manifest

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/robfig/cron/v3"
)

// CronParser parses PingSource schedules: the standard five fields (what
// Knative accepts), descriptors such as @hourly and @every 1s, and an optional
// leading seconds field for tests and local use.
var CronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

func (d *Delivery) validate(path string) error {
	if d == nil {
		return nil
	}
	var errs []error
	if d.Retry != nil && *d.Retry < 0 {
		errs = append(errs, fmt.Errorf("%s.retry must be >= 0, got %d", path, *d.Retry))
	}
	switch d.BackoffPolicy {
	case "", BackoffLinear, BackoffExponential:
	default:
		errs = append(errs, fmt.Errorf("%s.backoffPolicy must be linear or exponential, got %q", path, d.BackoffPolicy))
	}
	if d.BackoffDelay != nil && d.BackoffDelay.D < 0 {
		errs = append(errs, fmt.Errorf("%s.backoffDelay must not be negative", path))
	}
	if d.Timeout != nil && d.Timeout.D <= 0 {
		errs = append(errs, fmt.Errorf("%s.timeout must be positive, got %q", path, d.Timeout.Raw))
	}
	if d.DeadLetterSink != nil {
		if err := d.DeadLetterSink.validate(path + ".deadLetterSink"); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (d Destination) validate(path string) error {
	if d.Ref == nil && d.URI == "" {
		return fmt.Errorf("%s: needs ref or uri", path)
	}
	if d.Ref != nil {
		if d.Ref.Kind == "" || d.Ref.Name == "" {
			return fmt.Errorf("%s.ref: kind and name are required", path)
		}
		if d.Ref.APIVersion == "" {
			return fmt.Errorf("%s.ref: apiVersion is required (e.g. %s)", path, ServingV1)
		}
	}
	if d.URI != "" {
		u, err := url.Parse(d.URI)
		if err != nil {
			return fmt.Errorf("%s.uri: %w", path, err)
		}
		if d.Ref == nil && (u.Scheme != "http" && u.Scheme != "https" || u.Host == "") {
			return fmt.Errorf("%s.uri %q: must be an absolute http(s) URL when there is no ref", path, d.URI)
		}
	}
	return nil
}

func (b *Broker) validate() error {
	var errs []error
	switch c := b.Class(); c {
	case "", "Kafka", "KafkaNamespaced", "MTChannelBasedBroker":
	default:
		errs = append(errs, fmt.Errorf("annotation %s: unknown broker class %q (Kafka, KafkaNamespaced or MTChannelBasedBroker)", BrokerClassAnnotation, c))
	}
	if c := b.Spec.Config; c != nil && (c.Kind == "" || c.Name == "") {
		errs = append(errs, errors.New("spec.config: kind and name are required"))
	}
	if err := b.Spec.Delivery.validate("spec.delivery"); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (t *Trigger) validate() error {
	var errs []error
	if t.Spec.Broker == "" {
		errs = append(errs, errors.New("spec.broker is required"))
	}
	if err := t.Spec.Subscriber.validate("spec.subscriber"); err != nil {
		errs = append(errs, err)
	}
	if err := t.Spec.Delivery.validate("spec.delivery"); err != nil {
		errs = append(errs, err)
	}
	switch o := t.Metadata.Annotations[DeliveryOrderAnnotation]; o {
	case "", "ordered", "unordered":
	default:
		errs = append(errs, fmt.Errorf("annotation %s must be ordered or unordered, got %q", DeliveryOrderAnnotation, o))
	}
	if _, err := t.Parallelism(); err != nil {
		errs = append(errs, err)
	}
	if t.Spec.Filter != nil {
		for k := range t.Spec.Filter.Attributes {
			if !validAttributeName(k) {
				errs = append(errs, fmt.Errorf("spec.filter.attributes: %q is not a CloudEvents attribute name", k))
			}
		}
	}
	if err := t.compile(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (p *PingSource) validate() error {
	var errs []error
	if _, err := CronParser.Parse(p.ScheduleOrDefault()); err != nil {
		errs = append(errs, fmt.Errorf("spec.schedule %q: %w", p.Spec.Schedule, err))
	}
	if p.Spec.Timezone != "" {
		if _, err := time.LoadLocation(p.Spec.Timezone); err != nil {
			errs = append(errs, fmt.Errorf("spec.timezone: %w", err))
		}
	}
	if p.Spec.Data != "" && p.Spec.DataBase64 != "" {
		errs = append(errs, errors.New("spec.data and spec.dataBase64 are mutually exclusive"))
	}
	if p.Spec.DataBase64 != "" {
		if _, err := base64.StdEncoding.DecodeString(p.Spec.DataBase64); err != nil {
			errs = append(errs, fmt.Errorf("spec.dataBase64: %w", err))
		}
	}
	if err := p.Spec.Sink.validate("spec.sink"); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Location is the PingSource's time zone (UTC when unset).
func (p *PingSource) Location() *time.Location {
	if p.Spec.Timezone == "" {
		return time.UTC
	}
	loc, err := time.LoadLocation(p.Spec.Timezone)
	if err != nil {
		return time.UTC
	}
	return loc
}

// DataBytes is the payload a tick carries.
func (p *PingSource) DataBytes() []byte {
	if p.Spec.DataBase64 != "" {
		b, _ := base64.StdEncoding.DecodeString(p.Spec.DataBase64)
		return b
	}
	return []byte(p.Spec.Data)
}

func (f *Func) validate() error {
	var errs []error
	if f.SpecVersion == "" {
		errs = append(errs, errors.New("specVersion is required"))
	}
	if !dns1123(f.Name) {
		errs = append(errs, fmt.Errorf("name %q is not a DNS-1123 label", f.Name))
	}
	if f.Runtime == "" {
		errs = append(errs, errors.New("runtime is required"))
	}
	if f.Created == "" {
		errs = append(errs, errors.New("created is required"))
	} else if _, err := time.Parse(time.RFC3339, f.Created); err != nil {
		errs = append(errs, fmt.Errorf("created: %w", err))
	}
	switch f.Invoke {
	case "", "http", "cloudevent":
	default:
		errs = append(errs, fmt.Errorf("invoke must be http or cloudevent, got %q", f.Invoke))
	}
	if sc := f.Deploy.Options.Scale; sc != nil {
		if sc.Min != nil && *sc.Min < 0 {
			errs = append(errs, errors.New("deploy.options.scale.min must be >= 0"))
		}
		if sc.Min != nil && sc.Max != nil && *sc.Max > 0 && *sc.Max < *sc.Min {
			errs = append(errs, errors.New("deploy.options.scale.max must be >= min"))
		}
		switch sc.Metric {
		case "", "concurrency", "rps":
		default:
			errs = append(errs, fmt.Errorf("deploy.options.scale.metric must be concurrency or rps, got %q", sc.Metric))
		}
	}
	for i, e := range f.Run.Envs {
		if e.Name == "" && e.Value == "" {
			errs = append(errs, fmt.Errorf("run.envs[%d]: empty entry", i))
		}
	}
	return errors.Join(errs...)
}

// Validate checks references between objects: every trigger's broker exists
// in its namespace, every broker's config ConfigMap exists, every PingSource
// whose sink is a Broker points at an existing one, every EventPolicy's
// spec.to ref names an existing Broker of its namespace, and names are unique.
func (s *Set) Validate() error {
	var errs []error
	seen := map[string]string{}
	unique := func(kind, ns, name, where string) {
		k := kind + " " + ns + "/" + name
		if prev, ok := seen[k]; ok {
			errs = append(errs, fmt.Errorf("%s: %s is also defined in %s", where, k, prev))
		}
		seen[k] = where
	}
	for _, b := range s.Brokers {
		unique("Broker", b.Metadata.Namespace, b.Metadata.Name, b.File)
		if c := b.Spec.Config; c != nil && c.Kind == "ConfigMap" {
			ns := c.Namespace
			if ns == "" {
				ns = b.Metadata.Namespace
			}
			if _, ok := s.ConfigMap(ns, c.Name); !ok {
				errs = append(errs, fmt.Errorf("%s: spec.config refers to ConfigMap %s/%s, which is not defined", b.File, ns, c.Name))
			}
		}
	}
	for _, c := range s.ConfigMaps {
		unique("ConfigMap", c.Metadata.Namespace, c.Metadata.Name, c.File)
	}
	for _, t := range s.Triggers {
		unique("Trigger", t.Metadata.Namespace, t.Metadata.Name, t.File)
		if _, ok := s.Broker(t.Metadata.Namespace, t.Spec.Broker); !ok {
			errs = append(errs, fmt.Errorf("%s: spec.broker %q: no such Broker in namespace %s", t.File, t.Spec.Broker, t.Metadata.Namespace))
		}
	}
	for _, p := range s.PingSources {
		unique("PingSource", p.Metadata.Namespace, p.Metadata.Name, p.File)
		if r := p.Spec.Sink.Ref; r != nil && r.Kind == "Broker" {
			ns := r.Namespace
			if ns == "" {
				ns = p.Metadata.Namespace
			}
			if _, ok := s.Broker(ns, r.Name); !ok {
				errs = append(errs, fmt.Errorf("%s: spec.sink refers to Broker %s/%s, which is not defined", p.File, ns, r.Name))
			}
		}
	}
	for _, p := range s.EventPolicies {
		unique("EventPolicy", p.Metadata.Namespace, p.Metadata.Name, p.File)
		if err := p.validateRefs(s); err != nil {
			errs = append(errs, err)
		}
	}
	funcs := map[string]string{}
	for _, f := range s.Funcs {
		if prev, ok := funcs[f.Name]; ok {
			errs = append(errs, fmt.Errorf("%s: function %q is also defined in %s", f.File, f.Name, prev))
		}
		funcs[f.Name] = f.File
	}
	return errors.Join(errs...)
}
