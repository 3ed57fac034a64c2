package api_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"

	"github.com/overture-music/overture/internal/api"
	"github.com/overture-music/overture/internal/platform"
)

// The document and the routes the gateway mounts must agree both ways: every
// registered route is documented, and every documented operation is served.
func TestDocumentMatchesRegisteredRoutes(t *testing.T) {
	doc, err := api.Document()
	require.NoError(t, err)
	ops, err := api.Operations(doc)
	require.NoError(t, err)
	documented := map[string]bool{}
	for _, op := range ops {
		documented[op.Method+" "+op.Path] = true
	}
	served := map[string]string{}
	for _, r := range platform.GatewayRoutes() {
		served[r.Method+" "+api.TemplateOf(r.Path)] = "gateway"
	}
	for _, s := range platform.Services() {
		for _, r := range s.Routes() {
			key := r.Method + " " + api.TemplateOf(r.Path)
			if prev, ok := served[key]; ok {
				t.Errorf("%s is registered by both %s and %s", key, prev, s.Name())
			}
			served[key] = s.Name()
		}
	}
	for key, owner := range served {
		if !documented[key] {
			t.Errorf("%s (service %s) is not in the OpenAPI document: add it to internal/api/openapi/%s.json", key, owner, owner)
		}
	}
	for key := range documented {
		if _, ok := served[key]; !ok {
			t.Errorf("the OpenAPI document describes %s, which no service registers in Routes()", key)
		}
	}
}

func TestDocumentIsOpenAPI31(t *testing.T) {
	doc, err := api.Document()
	require.NoError(t, err)
	var d map[string]any
	require.NoError(t, json.Unmarshal(doc, &d))
	require.Equal(t, "3.1.0", d["openapi"])
	require.Contains(t, d, "info")
	// Every operation answers with at least one documented response, and every
	// local $ref resolves.
	var paths map[string]map[string]map[string]any
	require.NoError(t, json.Unmarshal(mustField(t, doc, "paths"), &paths))
	for p, item := range paths {
		for m, op := range item {
			if strings.HasPrefix(m, "x-") || m == "parameters" || m == "summary" || m == "description" {
				continue
			}
			require.NotEmpty(t, op["responses"], "%s %s has no responses", m, p)
		}
	}
	for _, ref := range refs(d) {
		require.True(t, resolves(d, ref), "unresolved $ref %s", ref)
	}
}

func mustField(t *testing.T, doc []byte, k string) json.RawMessage {
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(doc, &m))
	return m[k]
}

func refs(v any) []string {
	var out []string
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if s, ok := e.(string); ok && k == "$ref" {
				out = append(out, s)
			} else {
				out = append(out, refs(e)...)
			}
		}
	case []any:
		for _, e := range x {
			out = append(out, refs(e)...)
		}
	}
	return out
}

func resolves(doc map[string]any, ref string) bool {
	if !strings.HasPrefix(ref, "#/") {
		return true // external references are not ours to check
	}
	var cur any = doc
	for _, part := range strings.Split(ref[2:], "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return false
		}
		if cur, ok = m[strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")]; !ok {
			return false
		}
	}
	return true
}

func TestMerge(t *testing.T) {
	frag := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	tests := []struct {
		name    string
		files   map[string]string
		wantErr string
		wantOps []string
	}{
		{
			name: "DisjointFragments",
			files: map[string]string{
				"a.json": `{"paths":{"/v1/a":{"get":{"responses":{"200":{"description":"ok"}}}}}}`,
				"b.json": `{"paths":{"/v1/b/{id}":{"delete":{"responses":{"204":{"description":"ok"}}}}}}`,
			},
			wantOps: []string{"DELETE /v1/b/{id}", "GET /v1/a"},
		},
		{
			name: "SamePathDifferentMethods",
			files: map[string]string{
				"a.json": `{"paths":{"/v1/x":{"get":{"responses":{}}}}}`,
				"b.json": `{"paths":{"/v1/x":{"post":{"responses":{}}}}}`,
			},
			wantOps: []string{"GET /v1/x", "POST /v1/x"},
		},
		{
			name: "SameOperationTwice",
			files: map[string]string{
				"a.json": `{"paths":{"/v1/x":{"get":{"responses":{}}}}}`,
				"b.json": `{"paths":{"/v1/x":{"get":{"responses":{}}}}}`,
			},
			wantErr: "a.json and fragments/b.json both define GET /v1/x",
		},
		{
			name: "IdenticalSharedComponent",
			files: map[string]string{
				"a.json": `{"paths":{},"components":{"schemas":{"P":{"type":"object"}}}}`,
				"b.json": `{"paths":{},"components":{"schemas":{"P":{"type":"object"}}}}`,
			},
		},
		{
			name: "ConflictingComponent",
			files: map[string]string{
				"a.json": `{"paths":{},"components":{"schemas":{"P":{"type":"object"}}}}`,
				"b.json": `{"paths":{},"components":{"schemas":{"P":{"type":"string"}}}}`,
			},
			wantErr: "define components/schemas/P differently",
		},
		{
			name:    "BrokenJSON",
			files:   map[string]string{"a.json": `{"paths":`},
			wantErr: "parse fragments/a.json",
		},
		{
			name:    "RelativePath",
			files:   map[string]string{"a.json": `{"paths":{"v1/x":{}}}`},
			wantErr: `path "v1/x" does not start with /`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for n, c := range tt.files {
				fsys["fragments/"+n] = frag(c)
			}
			doc, err := api.Merge(fsys, "fragments")
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			ops, err := api.Operations(doc)
			require.NoError(t, err)
			var got []string
			for _, op := range ops {
				got = append(got, op.Method+" "+op.Path)
			}
			slices.Sort(got)
			require.Equal(t, tt.wantOps, got)
		})
	}
}

func TestTemplateOf(t *testing.T) {
	for in, want := range map[string]string{
		"/v1/tracks/{id}":        "/v1/tracks/{id}",
		"/v1/files/{path...}":    "/v1/files/{path}",
		"/v1/tracks/{$}":         "/v1/tracks/",
		"/v1/a/{id}/b/{rest...}": "/v1/a/{id}/b/{rest}",
		"/v1/plain":              "/v1/plain",
	} {
		require.Equal(t, want, api.TemplateOf(in), in)
	}
}

func FuzzMerge(f *testing.F) {
	f.Add(`{"paths":{"/v1/a":{"get":{"responses":{}}}},"components":{"schemas":{"X":{}}}}`)
	f.Add(`{"paths":{"/x":{"parameters":[]}}}`)
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, s string) {
		doc, err := api.Merge(fstest.MapFS{"d/a.json": {Data: []byte(s)}}, "d")
		if err != nil {
			return
		}
		// Whatever merges must be a document Operations can read back.
		if _, err := api.Operations(doc); err != nil {
			t.Fatalf("merged document does not parse: %v", err)
		}
	})
}
