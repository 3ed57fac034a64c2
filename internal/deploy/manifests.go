package deploy

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/overture-music/overture/internal/manifest"
)

// brokers/ and triggers/ are written for namespace overture (the embedded
// broker reads them as they are). A cluster may use another: Manifests
// moves them, rewriting exactly the three places a namespace appears in
// them — a namespace field, an event source path /namespaces/NS/, and an
// EventPolicy subject system:serviceaccount:NS: — so NAMESPACE works for
// every object `make deploy` applies, not only for the rendered ones.

var docSep = regexp.MustCompile(`(?m)^---\s*$`)

// ReadManifests decodes every document of the *.yaml files of dirs, in
// file order.
func ReadManifests(dirs ...string) ([]Object, error) {
	var out []Object
	for _, dir := range dirs {
		files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("read manifests: %w", err)
			}
			for i, doc := range docSep.Split(string(b), -1) {
				var obj Object
				if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
					return nil, fmt.Errorf("%s document %d: %w", f, i+1, err)
				}
				if len(obj) > 0 {
					out = append(out, obj)
				}
			}
		}
	}
	return out, nil
}

// Rebase moves objs (in place) from manifest.DefaultNamespace into
// namespace.
func Rebase(objs []Object, namespace string) {
	from := manifest.DefaultNamespace
	var walk func(key string, v any) any
	walk = func(key string, v any) any {
		switch t := v.(type) {
		case map[string]any:
			for k, e := range t {
				t[k] = walk(k, e)
			}
		case []any:
			for i, e := range t {
				t[i] = walk(key, e)
			}
		case string:
			if key == "namespace" && t == from {
				return namespace
			}
			t = strings.ReplaceAll(t, "/namespaces/"+from+"/", "/namespaces/"+namespace+"/")
			if key == "sub" {
				t = strings.Replace(t, "system:serviceaccount:"+from+":", "system:serviceaccount:"+namespace+":", 1)
			}
			return t
		}
		return v
	}
	for _, obj := range objs {
		walk("", obj)
		if m, ok := obj["metadata"].(map[string]any); ok {
			m["namespace"] = namespace
		}
	}
}

// KafkaBrokerConfig is the ConfigMap brokers/default.yaml configures the
// Kafka broker with.
const KafkaBrokerConfig = "kafka-broker-config"

// SetReplicationFactor sets the Kafka broker's default.topic.replication.factor
// in objs (kind's one-node Kafka cannot hold three replicas). It is set
// before the first apply, because the broker creates its topic from the
// ConfigMap as it is when the Broker is created.
func SetReplicationFactor(objs []Object, rf string) error {
	for _, obj := range objs {
		if obj["kind"] == "ConfigMap" && fmt.Sprint(obj["metadata"].(map[string]any)["name"]) == KafkaBrokerConfig {
			data, _ := obj["data"].(map[string]any)
			if data == nil {
				return fmt.Errorf("%s has no data", KafkaBrokerConfig)
			}
			data["default.topic.replication.factor"] = rf
			return nil
		}
	}
	return fmt.Errorf("no ConfigMap %s among the broker manifests", KafkaBrokerConfig)
}
