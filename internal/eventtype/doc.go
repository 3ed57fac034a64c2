package eventtype

import (
	"fmt"
	"reflect"
	"strings"
)

// Markdown renders the catalog as docs/events.md: an index, then one section
// per type with its producers, consumers and data fields (JSON names and Go
// types, by reflection). Regenerate with
//
//	go run ./cmd/overture events doc > docs/events.md
func Markdown() string {
	var b strings.Builder
	specs := All()
	b.WriteString("# Event catalog\n\n")
	b.WriteString("<!-- Generated from internal/eventtype; do not edit. Regenerate with:\n")
	b.WriteString("     go run ./cmd/overture events doc > docs/events.md -->\n\n")
	b.WriteString("Every CloudEvent type Overture emits, with the Go struct of its `data`\n")
	b.WriteString("(JSON, `datacontenttype: application/json`), who produces it and who consumes it.\n")
	b.WriteString("Types are reverse-DNS with a version suffix; a breaking change is a new type.\n\n")
	b.WriteString("| Type | Producers | Consumers |\n|---|---|---|\n")
	for _, s := range specs {
		fmt.Fprintf(&b, "| [`%s`](#%s) | %s | %s |\n", s.Type, anchor(s.Type), names(s.Producers), consumers(s))
	}
	for _, s := range specs {
		fmt.Fprintf(&b, "\n## `%s`\n\n", s.Type)
		if s.Doc != "" {
			b.WriteString(s.Doc + "\n\n")
		}
		fmt.Fprintf(&b, "- Producers: %s\n", names(s.Producers))
		fmt.Fprintf(&b, "- Consumers: %s\n", consumers(s))
		if s.Data == nil {
			continue
		}
		t := reflect.TypeOf(s.Data)
		fmt.Fprintf(&b, "- Data: `%s`\n\n", t.String())
		fields := dataFields(t, "")
		if len(fields) == 0 {
			b.WriteString("No data fields.\n")
			continue
		}
		b.WriteString("| Field | Go type | Optional |\n|---|---|---|\n")
		for _, f := range fields {
			opt := ""
			if f.optional {
				opt = "yes"
			}
			fmt.Fprintf(&b, "| `%s` | `%s` | %s |\n", f.name, f.typ, opt)
		}
	}
	return b.String()
}

type field struct {
	name, typ string
	optional  bool
}

// dataFields lists the JSON fields of struct t as encoding/json sees them:
// embedded structs are flattened, nested structs are listed with dotted names.
func dataFields(t reflect.Type, prefix string) []field {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var out []field
	for i := range t.NumField() {
		sf := t.Field(i)
		tag := sf.Tag.Get("json")
		if tag == "-" || (!sf.IsExported() && !sf.Anonymous) {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		ft := sf.Type
		if sf.Anonymous && name == "" {
			out = append(out, dataFields(ft, prefix)...)
			continue
		}
		if name == "" {
			name = sf.Name
		}
		optional := strings.Contains(opts, "omitempty") || strings.Contains(opts, "omitzero") || ft.Kind() == reflect.Pointer
		out = append(out, field{name: prefix + name, typ: ft.String(), optional: optional})
		inner := ft
		for inner.Kind() == reflect.Pointer || inner.Kind() == reflect.Slice || inner.Kind() == reflect.Array {
			inner = inner.Elem()
		}
		if inner.Kind() == reflect.Struct && inner.PkgPath() == t.PkgPath() {
			sep := "."
			if ft.Kind() == reflect.Slice || ft.Kind() == reflect.Array {
				sep = "[]."
			}
			out = append(out, dataFields(inner, prefix+name+sep)...)
		}
	}
	return out
}

func names(ns []string) string {
	if len(ns) == 0 {
		return "—"
	}
	return strings.Join(ns, ", ")
}

func consumers(s Spec) string {
	c := names(s.Consumers)
	if s.Terminal {
		if len(s.Consumers) == 0 {
			return "terminal"
		}
		c += " (terminal)"
	}
	return c
}

// anchor is the GitHub heading anchor of "## `typ`".
func anchor(typ string) string {
	return strings.Map(func(r rune) rune {
		if r == '.' || r == '`' {
			return -1
		}
		return r
	}, strings.ToLower(typ))
}
