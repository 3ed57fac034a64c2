package manifest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const goodBroker = `
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata:
  name: default
  namespace: overture
  annotations: {eventing.knative.dev/broker.class: Kafka}
spec:
  config: {apiVersion: v1, kind: ConfigMap, name: kafka-broker-config}
  delivery:
    retry: 3
    backoffPolicy: exponential
    backoffDelay: PT0.2S
    deadLetterSink: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: dead-letter}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: kafka-broker-config, namespace: overture}
data: {bootstrap.servers: "kafka:9092"}
`

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLoadDirParsesEveryKind(t *testing.T) {
	t.Parallel()
	dir := writeFiles(t, map[string]string{
		"brokers/default.yaml": goodBroker,
		"triggers/notifier.yaml": `
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata:
  name: notifier-paid
  namespace: overture
  annotations: {kafka.eventing.knative.dev/delivery.order: ordered}
spec:
  broker: default
  filters:
    - exact: {type: music.overture.subscription.payment.completed.v1}
  subscriber: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: notifier}}
  delivery:
    retry: 5
    backoffPolicy: linear
    backoffDelay: PT1S
    timeout: PT10S
---
# second document
apiVersion: sources.knative.dev/v1
kind: PingSource
metadata: {name: nightly, namespace: overture}
spec:
  schedule: "0 3 * * *"
  timezone: Europe/Moscow
  contentType: application/json
  data: '{"job":"charts"}'
  sink: {ref: {apiVersion: eventing.knative.dev/v1, kind: Broker, name: default}}
  ceOverrides: {extensions: {job: charts}}
`,
		"functions/notifier/func.yaml": `
specVersion: 0.36.0
name: notifier
runtime: go
invoke: cloudevent
created: 2026-11-25T10:00:00Z
run:
  envs:
    - {name: SMTP_URL, value: '{{ env:SMTP_URL }}'}
deploy:
  options:
    scale: {min: 0, max: 5, metric: concurrency, target: 50}
`,
		"functions/notifier/testdata/ignored.yaml": "not: [valid",
	})
	set, err := LoadDir(filepath.Join(dir, "brokers"), filepath.Join(dir, "triggers"), filepath.Join(dir, "functions"))
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Brokers) != 1 || len(set.ConfigMaps) != 1 || len(set.Triggers) != 1 || len(set.PingSources) != 1 || len(set.Funcs) != 1 {
		t.Fatalf("got %d brokers, %d configmaps, %d triggers, %d pingsources, %d funcs",
			len(set.Brokers), len(set.ConfigMaps), len(set.Triggers), len(set.PingSources), len(set.Funcs))
	}
	b := set.Brokers[0]
	if b.Class() != "Kafka" || b.Spec.Delivery.Retries() != 3 || b.Spec.Delivery.DeadLetterSink.Ref.Name != "dead-letter" {
		t.Errorf("broker parsed wrong: %+v", b)
	}
	if got := b.Spec.Delivery.Backoff(3); got != 1600*time.Millisecond {
		t.Errorf("exponential backoff(3) = %v, want 1.6s", got)
	}
	tr := set.Triggers[0]
	if !tr.Ordered() || tr.Spec.Delivery.Backoff(2) != 2*time.Second || tr.Spec.Delivery.TimeoutOr(0) != 10*time.Second {
		t.Errorf("trigger parsed wrong: %+v", tr.Spec.Delivery)
	}
	p := set.PingSources[0]
	if p.Source() != "/apis/v1/namespaces/overture/pingsources/nightly" || p.Location().String() != "Europe/Moscow" || string(p.DataBytes()) != `{"job":"charts"}` {
		t.Errorf("pingsource parsed wrong: %+v", p.Spec)
	}
	f := set.Funcs[0]
	if f.Name != "notifier" || f.Invoke != "cloudevent" || *f.Deploy.Options.Scale.Max != 5 || f.Run.Envs[0].Name != "SMTP_URL" {
		t.Errorf("func.yaml parsed wrong: %+v", f)
	}
}

func TestLoadDirRejects(t *testing.T) {
	t.Parallel()
	trigger := func(spec string) string {
		return goodBroker + "\n---\napiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t1, namespace: overture}\nspec:\n" + spec
	}
	sub := "  subscriber: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: fn}}\n"
	cases := map[string]struct{ yaml, want string }{
		"unknown dialect":      {trigger("  broker: default\n  filters: [{regex: {type: a}}]\n" + sub), `unknown field "regex"`},
		"cesql":                {trigger("  broker: default\n  filters: [{cesql: \"type = 'a'\"}]\n" + sub), "CESQL dialect is not supported"},
		"bad duration":         {trigger("  broker: default\n  delivery: {backoffDelay: 2s}\n" + sub), `invalid ISO-8601 duration "2s"`},
		"negative retry":       {trigger("  broker: default\n  delivery: {retry: -1}\n" + sub), "spec.delivery.retry must be >= 0"},
		"bad backoff policy":   {trigger("  broker: default\n  delivery: {backoffPolicy: random}\n" + sub), "backoffPolicy must be linear or exponential"},
		"unknown broker":       {trigger("  broker: missing\n" + sub), `spec.broker "missing": no such Broker`},
		"no subscriber":        {trigger("  broker: default\n"), "spec.subscriber: needs ref or uri"},
		"relative uri":         {trigger("  broker: default\n  subscriber: {uri: /x}\n"), "must be an absolute http(s) URL"},
		"bad order annotation": {goodBroker + "\n---\napiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t1, annotations: {kafka.eventing.knative.dev/delivery.order: sorted}}\nspec:\n  broker: default\n" + sub, "must be ordered or unordered"},
		"unknown field":        {trigger("  broker: default\n  subscribr: {}\n" + sub), `unknown field "subscribr"`},
		"zero parallelism":     {goodBroker + "\n---\napiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t1, annotations: {eventing.overture.music/parallelism: \"0\"}}\nspec:\n  broker: default\n" + sub, "from 1 to 4096"},
		"word parallelism":     {goodBroker + "\n---\napiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t1, annotations: {eventing.overture.music/parallelism: many}}\nspec:\n  broker: default\n" + sub, "from 1 to 4096"},
		"huge parallelism":     {goodBroker + "\n---\napiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t1, annotations: {eventing.overture.music/parallelism: \"5000\"}}\nspec:\n  broker: default\n" + sub, "from 1 to 4096"},
		"no name":              {"apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata: {}\n", "has no metadata.name"},
		"no kind":              {"apiVersion: v1\nmetadata: {name: x}\n", "apiVersion and kind are required"},
		"wrong api version":    {"apiVersion: eventing.knative.dev/v1beta1\nkind: Trigger\nmetadata: {name: x}\n", ""},
		"missing configmap":    {"apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata: {name: b}\nspec: {config: {apiVersion: v1, kind: ConfigMap, name: nope}}\n", "ConfigMap overture/nope, which is not defined"},
		"bad class":            {"apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata: {name: b, annotations: {eventing.knative.dev/broker.class: kafka}}\n", `unknown broker class "kafka"`},
		"bad schedule":         {"apiVersion: sources.knative.dev/v1\nkind: PingSource\nmetadata: {name: p}\nspec: {schedule: 'every day', sink: {uri: 'http://x'}}\n", "spec.schedule"},
		"bad timezone":         {"apiVersion: sources.knative.dev/v1\nkind: PingSource\nmetadata: {name: p}\nspec: {timezone: Mars/Base, sink: {uri: 'http://x'}}\n", "spec.timezone"},
		"both data fields":     {"apiVersion: sources.knative.dev/v1\nkind: PingSource\nmetadata: {name: p}\nspec: {data: a, dataBase64: YQ==, sink: {uri: 'http://x'}}\n", "mutually exclusive"},
		"ping to no broker":    {"apiVersion: sources.knative.dev/v1\nkind: PingSource\nmetadata: {name: p}\nspec: {sink: {ref: {apiVersion: eventing.knative.dev/v1, kind: Broker, name: nope}}}\n", "Broker overture/nope, which is not defined"},
		"duplicate":            {goodBroker + "\n---\n" + goodBroker, "is also defined in"},
		"not yaml":             {"a: [b\n", "not YAML"},
		"bad name":             {"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: Bad_Name}\n", "not a DNS-1123 label"},
	}
	for name, c := range cases {
		dir := writeFiles(t, map[string]string{"m.yaml": c.yaml})
		_, err := LoadDir(dir)
		if c.want == "" {
			// An object under an unknown apiVersion is kept as an Other and
			// must not break loading of the rest.
			if name == "wrong api version" && err == nil {
				continue
			}
		}
		if err == nil {
			t.Errorf("%s: LoadDir accepted it", name)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %q does not mention %q", name, err, c.want)
		}
		if !strings.Contains(err.Error(), "m.yaml") {
			t.Errorf("%s: error %q does not name the file", name, err)
		}
	}

	bad := map[string]string{
		"no specVersion": "name: f\nruntime: go\ncreated: 2026-01-01T00:00:00Z\n",
		"bad invoke":     "specVersion: 0.36.0\nname: f\nruntime: go\ncreated: 2026-01-01T00:00:00Z\ninvoke: grpc\n",
		"bad scale":      "specVersion: 0.36.0\nname: f\nruntime: go\ncreated: 2026-01-01T00:00:00Z\ndeploy: {options: {scale: {min: 3, max: 1}}}\n",
		"unknown field":  "specVersion: 0.36.0\nname: f\nruntime: go\ncreated: 2026-01-01T00:00:00Z\nhandler: x\n",
	}
	for name, y := range bad {
		dir := writeFiles(t, map[string]string{"f/func.yaml": y})
		if _, err := LoadDir(dir); err == nil {
			t.Errorf("func.yaml %s: accepted", name)
		}
	}
}

// TestRepositoryManifests checks that what `make deploy` applies is valid:
// every Broker, Trigger and PingSource parses, names and references resolve,
// and every subscriber and dead-letter sink names a function that has a
// func.yaml under functions/.
func TestRepositoryManifests(t *testing.T) {
	t.Parallel()
	set, err := LoadDir("../../brokers", "../../triggers", "../../functions")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := set.Broker("overture", "default"); !ok {
		t.Fatal("brokers/ must define Broker overture/default")
	}
	checkRef := func(where string, d *Destination) {
		if d == nil || d.Ref == nil {
			return
		}
		switch d.Ref.Kind {
		case "Service":
			if _, ok := set.Func(d.Ref.Name); !ok {
				t.Errorf("%s: refers to Service %q, but no functions/*/func.yaml has that name", where, d.Ref.Name)
			}
		case "Broker":
		default:
			t.Errorf("%s: refers to a %s; only Service and Broker refs are supported", where, d.Ref.Kind)
		}
	}
	for _, b := range set.Brokers {
		if b.Class() != "Kafka" {
			t.Errorf("%s: broker class is %q, want Kafka", b.File, b.Class())
		}
		if b.Spec.Delivery != nil {
			checkRef(b.File+" deadLetterSink", b.Spec.Delivery.DeadLetterSink)
		}
	}
	for _, tr := range set.Triggers {
		if tr.Metadata.Namespace != "overture" {
			t.Errorf("%s: namespace %q, want overture", tr.File, tr.Metadata.Namespace)
		}
		checkRef(tr.File+" subscriber", &tr.Spec.Subscriber)
		if tr.Spec.Delivery != nil {
			checkRef(tr.File+" deadLetterSink", tr.Spec.Delivery.DeadLetterSink)
		}
	}
	for _, p := range set.PingSources {
		checkRef(p.File+" sink", &p.Spec.Sink)
	}
	for _, o := range set.Others {
		if o.APIVersion == "" || o.Kind == "" || o.Metadata.Name == "" {
			t.Errorf("%s: incomplete object", o.File)
		}
	}
}

// FuzzSetAdd feeds arbitrary documents to the manifest parser: it may reject
// them, but must not panic, and whatever it accepts must have names.
func FuzzSetAdd(f *testing.F) {
	f.Add(goodBroker)
	f.Add("apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t}\nspec: {broker: default, filters: [{not: {any: [{exact: {type: a}}]}}], subscriber: {uri: 'http://x'}}\n")
	f.Add("apiVersion: sources.knative.dev/v1\nkind: PingSource\nmetadata: {name: p}\nspec: {schedule: '@every 1s', sink: {uri: 'http://x'}}\n")
	f.Add("---\n---\n# only comments\n")
	f.Fuzz(func(t *testing.T, doc string) {
		set := &Set{}
		if err := set.Add("fuzz.yaml", []byte(doc)); err != nil {
			return
		}
		for _, tr := range set.Triggers {
			if tr.Metadata.Name == "" || tr.Spec.Broker == "" {
				t.Fatalf("accepted an incomplete trigger: %+v", tr)
			}
			tr.Match(testEvent())
		}
		_ = set.Validate()
	})
}
