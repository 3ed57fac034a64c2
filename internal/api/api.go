// Package api assembles Overture's one public OpenAPI document.
//
// Every HTTP service describes its own routes in a fragment,
// openapi/<service>.json (an OpenAPI 3.1 document holding just "paths" and
// "components"), next to nothing else, so that services can be written in
// parallel without editing a shared file. Document merges the fragments into
// the document the gateway serves at /openapi.json; a test compares it with the
// routes the services really register, so the two cannot drift apart.
package api

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"reflect"
	"slices"
	"strings"
)

//go:embed openapi/*.json
var fragments embed.FS

// Version is the API version in the document's info block.
const Version = "1.0.0"

// Methods are the OpenAPI path-item keys that name operations.
var methods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// Document returns the merged OpenAPI 3.1 document of every fragment.
func Document() ([]byte, error) {
	return Merge(fragments, "openapi")
}

// Merge merges the *.json fragments in dir of fsys. Two fragments may share a
// path only with different methods, and a component name only with identical
// definitions; anything else is an error naming both fragments.
func Merge(fsys fs.FS, dir string) ([]byte, error) {
	names, err := fs.Glob(fsys, path.Join(dir, "*.json"))
	if err != nil {
		return nil, fmt.Errorf("openapi fragments: %w", err)
	}
	slices.Sort(names)
	paths := map[string]map[string]any{}
	pathOwner := map[string]string{} // "path method" -> fragment
	components := map[string]map[string]any{}
	compOwner := map[string]string{}
	var tags []any
	tagSeen := map[string]bool{}
	for _, name := range names {
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		var frag struct {
			Paths      map[string]map[string]any `json:"paths"`
			Components map[string]map[string]any `json:"components"`
			Tags       []map[string]any          `json:"tags"`
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		if err := dec.Decode(&frag); err != nil {
			return nil, fmt.Errorf("parse %s: %w", name, err)
		}
		for p, item := range frag.Paths {
			if !strings.HasPrefix(p, "/") {
				return nil, fmt.Errorf("%s: path %q does not start with /", name, p)
			}
			if paths[p] == nil {
				paths[p] = map[string]any{}
			}
			for k, v := range item {
				key := p + " " + k
				if prev, ok := pathOwner[key]; ok {
					if slices.Contains(methods, k) {
						return nil, fmt.Errorf("%s and %s both define %s %s", prev, name, strings.ToUpper(k), p)
					}
					if !reflect.DeepEqual(paths[p][k], v) {
						return nil, fmt.Errorf("%s and %s define %q of %s differently", prev, name, k, p)
					}
					continue
				}
				pathOwner[key] = name
				paths[p][k] = v
			}
		}
		for section, entries := range frag.Components {
			if components[section] == nil {
				components[section] = map[string]any{}
			}
			for k, v := range entries {
				key := section + "/" + k
				if prev, ok := compOwner[key]; ok {
					if !reflect.DeepEqual(components[section][k], v) {
						return nil, fmt.Errorf("%s and %s define components/%s differently", prev, name, key)
					}
					continue
				}
				compOwner[key] = name
				components[section][k] = v
			}
		}
		for _, t := range frag.Tags {
			n, _ := t["name"].(string)
			if n != "" && !tagSeen[n] {
				tagSeen[n] = true
				tags = append(tags, t)
			}
		}
	}
	if len(names) == 0 {
		return nil, errors.New("no OpenAPI fragments found")
	}
	doc := map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{
			"title":       "Overture API",
			"version":     Version,
			"description": "The public HTTP API of Overture, a music-streaming backend. Every error is application/problem+json (RFC 9457).",
		},
		"servers": []any{map[string]any{"url": "http://127.0.0.1:8080", "description": "overture dev (make run)"}},
		"paths":   paths,
	}
	if len(components) > 0 {
		doc["components"] = components
	}
	if len(tags) > 0 {
		doc["tags"] = tags
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode merged document: %w", err)
	}
	return out, nil
}

// Operation is one documented method and path.
type Operation struct {
	Method string // upper case
	Path   string // OpenAPI template, e.g. /v1/tracks/{id}
}

// Operations lists the operations of an OpenAPI document.
func Operations(doc []byte) ([]Operation, error) {
	var d struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		return nil, fmt.Errorf("parse document: %w", err)
	}
	var ops []Operation
	for p, item := range d.Paths {
		for k := range item {
			if slices.Contains(methods, k) {
				ops = append(ops, Operation{Method: strings.ToUpper(k), Path: p})
			}
		}
	}
	slices.SortFunc(ops, func(a, b Operation) int { return strings.Compare(a.Method+" "+a.Path, b.Method+" "+b.Path) })
	return ops, nil
}

// TemplateOf turns a net/http ServeMux path pattern into its OpenAPI path
// template: "{id}" stays, "{rest...}" becomes "{rest}", a trailing "{$}" goes.
func TemplateOf(pattern string) string {
	pattern = strings.TrimSuffix(pattern, "{$}")
	return strings.ReplaceAll(pattern, "...}", "}")
}
