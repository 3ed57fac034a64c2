package deploy_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

// crdSchemas compiles the openAPIV3Schema of every CRD in
// testdata/crds (Knative v1.18; see its SOURCE file), keyed by
// "apiVersion Kind". Objects get the API server's strict field validation:
// where a schema lists properties and does not preserve unknown fields, an
// unknown field is an error (kubectl apply refuses it by default since
// Kubernetes 1.27; before, it was silently dropped — a typo'd annotation
// block or probe would have vanished).
func crdSchemas(t *testing.T) map[string]*jsonschema.Schema {
	t.Helper()
	files, err := filepath.Glob("testdata/crds/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	c := jsonschema.NewCompiler()
	type ver struct{ id, key string }
	var vers []ver
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		var crd struct {
			Spec struct {
				Group string `json:"group"`
				Names struct {
					Kind string `json:"kind"`
				} `json:"names"`
				Versions []struct {
					Name   string `json:"name"`
					Served bool   `json:"served"`
					Schema struct {
						OpenAPIV3Schema map[string]any `json:"openAPIV3Schema"`
					} `json:"schema"`
				} `json:"versions"`
			} `json:"spec"`
		}
		require.NoError(t, yaml.Unmarshal(b, &crd), f)
		for _, v := range crd.Spec.Versions {
			if !v.Served || v.Schema.OpenAPIV3Schema == nil {
				continue
			}
			s := v.Schema.OpenAPIV3Schema
			// The API server checks the type meta and the object meta
			// itself; eventing's schemas leave them out.
			props, _ := s["properties"].(map[string]any)
			require.NotNil(t, props, f)
			for k, typ := range map[string]string{"apiVersion": "string", "kind": "string", "metadata": "object"} {
				if _, ok := props[k]; !ok {
					props[k] = map[string]any{"type": typ}
				}
			}
			strict(s)
			id := fmt.Sprintf("crd:///%s/%s/%s", crd.Spec.Group, v.Name, crd.Spec.Names.Kind)
			doc, err := roundTrip(s)
			require.NoError(t, err)
			require.NoError(t, c.AddResource(id, doc), id)
			vers = append(vers, ver{id, crd.Spec.Group + "/" + v.Name + " " + crd.Spec.Names.Kind})
		}
	}
	out := map[string]*jsonschema.Schema{}
	for _, v := range vers {
		s, err := c.Compile(v.id)
		require.NoError(t, err, v.id)
		out[v.key] = s
	}
	return out
}

// strict refuses unknown fields wherever the structural schema lists its
// properties and does not preserve unknown fields.
func strict(s map[string]any) {
	if props, ok := s["properties"].(map[string]any); ok {
		_, has := s["additionalProperties"]
		if !has && s["x-kubernetes-preserve-unknown-fields"] != true {
			s["additionalProperties"] = false
		}
		for _, p := range props {
			if m, ok := p.(map[string]any); ok {
				strict(m)
			}
		}
	}
	for _, k := range []string{"items", "additionalProperties"} {
		if m, ok := s[k].(map[string]any); ok {
			strict(m)
		}
	}
	for _, k := range []string{"allOf", "anyOf", "oneOf"} {
		if l, ok := s[k].([]any); ok {
			for _, e := range l {
				if m, ok := e.(map[string]any); ok {
					strict(m)
				}
			}
		}
	}
}

// roundTrip turns v into the JSON value model the validator expects.
func roundTrip(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return jsonschema.UnmarshalJSON(bytes.NewReader(b))
}

// validateCRD validates obj against its CRD schema; ok is false when no
// copied CRD defines its kind.
func validateCRD(schemas map[string]*jsonschema.Schema, obj map[string]any) (ok bool, err error) {
	s, found := schemas[str(obj, "apiVersion")+" "+str(obj, "kind")]
	if !found {
		return false, nil
	}
	inst, err := roundTrip(obj)
	if err != nil {
		return true, err
	}
	return true, s.Validate(inst)
}

// The schema check can fail: each of these is something the Knative API
// server refuses by its CRD schema. (What its admission webhooks refuse — a
// Trigger without a subscriber, a SinkBinding without a subject — the
// schemas do not say; wellFormed checks those.)
func TestCRDSchemasRefuseBrokenObjects(t *testing.T) {
	schemas := crdSchemas(t)
	for name, doc := range map[string]string{
		"TriggerSubscriberRefTypo":   "apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t}\nspec: {broker: default, subscriber: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, nam: f}}}",
		"TriggerBrokerNotAString":    "apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t}\nspec: {broker: [default]}",
		"ConcurrencyNotANumber":      "apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata: {name: s}\nspec: {template: {spec: {containerConcurrency: many, containers: [{image: i}]}}}",
		"MisplacedEnv":               "apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata: {name: s}\nspec: {template: {spec: {env: [], containers: [{image: i}]}}}",
		"EnvValueNotAString":         "apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata: {name: s}\nspec: {template: {spec: {containers: [{image: i, env: [{name: A, value: 1}]}]}}}",
		"PingSourceBadSinkField":     "apiVersion: sources.knative.dev/v1\nkind: PingSource\nmetadata: {name: p}\nspec: {schedule: '* * * * *', sink: {reff: {}}}",
		"SinkBindingSubjectSelector": "apiVersion: sources.knative.dev/v1\nkind: SinkBinding\nmetadata: {name: b}\nspec: {subject: {apiVersion: apps/v1, kind: Deployment, selector: x}, sink: {ref: {apiVersion: eventing.knative.dev/v1, kind: Broker, name: default}}}",
		"EventPolicyFromNotAList":    "apiVersion: eventing.knative.dev/v1alpha1\nkind: EventPolicy\nmetadata: {name: e}\nspec: {from: {sub: x}}",
		"BrokerDeliveryRetryAString": "apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata: {name: b}\nspec: {delivery: {retry: ten}}",
	} {
		t.Run(name, func(t *testing.T) {
			var obj map[string]any
			require.NoError(t, yaml.Unmarshal([]byte(doc), &obj))
			found, err := validateCRD(schemas, obj)
			require.True(t, found)
			require.Error(t, err)
		})
	}
}
