package manifest

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
)

// Filter decides whether a trigger wants an event.
type Filter interface {
	Match(e event.Event) bool
}

// ErrFilter is wrapped by every invalid filter expression.
var ErrFilter = errors.New("invalid trigger filter")

// FilterSpec is one entry of a Trigger's spec.filters (the "new" Subscriptions
// API filters): exactly one dialect per entry.
type FilterSpec struct {
	Exact  map[string]string `json:"exact,omitempty"`
	Prefix map[string]string `json:"prefix,omitempty"`
	Suffix map[string]string `json:"suffix,omitempty"`
	All    []FilterSpec      `json:"all,omitempty"`
	Any    []FilterSpec      `json:"any,omitempty"`
	Not    *FilterSpec       `json:"not,omitempty"`
	CESQL  string            `json:"cesql,omitempty"`
}

// Attribute returns the value of a context attribute or extension as a
// string, and whether the event has it.
func Attribute(e event.Event, name string) (string, bool) {
	switch name {
	case "specversion":
		return e.SpecVersion(), true
	case "id":
		return e.ID(), e.ID() != ""
	case "type":
		return e.Type(), e.Type() != ""
	case "source":
		return e.Source(), e.Source() != ""
	case "subject":
		return e.Subject(), e.Subject() != ""
	case "datacontenttype":
		return e.DataContentType(), e.DataContentType() != ""
	case "dataschema":
		return e.DataSchema(), e.DataSchema() != ""
	case "time":
		if e.Time().IsZero() {
			return "", false
		}
		return types.FormatTime(e.Time()), true
	}
	v, ok := e.Extensions()[name]
	if !ok {
		return "", false
	}
	s, err := types.Format(v)
	if err != nil {
		return "", false
	}
	return s, true
}

type matchFunc func(event.Event) bool

func (f matchFunc) Match(e event.Event) bool { return f(e) }

// MatchAll accepts every event (a trigger with no filter).
var MatchAll Filter = matchFunc(func(event.Event) bool { return true })

// CompileAttributes compiles the legacy spec.filter.attributes: every listed
// attribute must equal its value exactly. As in Knative, an empty value is the
// "any" wildcard and matches events with or without the attribute.
func CompileAttributes(attrs map[string]string) Filter {
	if len(attrs) == 0 {
		return MatchAll
	}
	keys := sortedKeys(attrs)
	return matchFunc(func(e event.Event) bool {
		for _, k := range keys {
			want := attrs[k]
			if want == "" {
				continue
			}
			if got, ok := Attribute(e, k); !ok || got != want {
				return false
			}
		}
		return true
	})
}

// CompileFilters compiles spec.filters: every entry must match.
func CompileFilters(specs []FilterSpec) (Filter, error) {
	fs := make([]Filter, 0, len(specs))
	for i, s := range specs {
		f, err := s.compile(fmt.Sprintf("filters[%d]", i))
		if err != nil {
			return nil, err
		}
		fs = append(fs, f)
	}
	return allOf(fs), nil
}

func allOf(fs []Filter) Filter {
	return matchFunc(func(e event.Event) bool {
		for _, f := range fs {
			if !f.Match(e) {
				return false
			}
		}
		return true
	})
}

func (s FilterSpec) compile(path string) (Filter, error) {
	var dialects []string
	if s.Exact != nil {
		dialects = append(dialects, "exact")
	}
	if s.Prefix != nil {
		dialects = append(dialects, "prefix")
	}
	if s.Suffix != nil {
		dialects = append(dialects, "suffix")
	}
	if s.All != nil {
		dialects = append(dialects, "all")
	}
	if s.Any != nil {
		dialects = append(dialects, "any")
	}
	if s.Not != nil {
		dialects = append(dialects, "not")
	}
	if s.CESQL != "" {
		dialects = append(dialects, "cesql")
	}
	switch len(dialects) {
	case 0:
		return nil, fmt.Errorf("%w: %s: no dialect (one of exact, prefix, suffix, all, any, not)", ErrFilter, path)
	case 1:
	default:
		return nil, fmt.Errorf("%w: %s: several dialects %v in one entry; use one per list item", ErrFilter, path, dialects)
	}
	switch dialects[0] {
	case "exact":
		return stringDialect(path+".exact", s.Exact, func(got, want string) bool { return got == want })
	case "prefix":
		return stringDialect(path+".prefix", s.Prefix, strings.HasPrefix)
	case "suffix":
		return stringDialect(path+".suffix", s.Suffix, strings.HasSuffix)
	case "all", "any":
		list := s.All
		if dialects[0] == "any" {
			list = s.Any
		}
		if len(list) == 0 {
			return nil, fmt.Errorf("%w: %s.%s: empty list", ErrFilter, path, dialects[0])
		}
		fs := make([]Filter, 0, len(list))
		for i, sub := range list {
			f, err := sub.compile(fmt.Sprintf("%s.%s[%d]", path, dialects[0], i))
			if err != nil {
				return nil, err
			}
			fs = append(fs, f)
		}
		if dialects[0] == "all" {
			return allOf(fs), nil
		}
		return matchFunc(func(e event.Event) bool {
			for _, f := range fs {
				if f.Match(e) {
					return true
				}
			}
			return false
		}), nil
	case "not":
		f, err := s.Not.compile(path + ".not")
		if err != nil {
			return nil, err
		}
		return matchFunc(func(e event.Event) bool { return !f.Match(e) }), nil
	default: // cesql
		return nil, fmt.Errorf("%w: %s.cesql: the CESQL dialect is not supported by the embedded broker; express %q with exact/prefix/suffix/all/any/not", ErrFilter, path, s.CESQL)
	}
}

// stringDialect compiles exact/prefix/suffix, which Knative restricts to a
// single attribute with a non-empty value per entry.
func stringDialect(path string, attrs map[string]string, cmp func(got, want string) bool) (Filter, error) {
	if len(attrs) != 1 {
		return nil, fmt.Errorf("%w: %s: must name exactly one attribute, got %d (combine entries with all)", ErrFilter, path, len(attrs))
	}
	var name, want string
	for name, want = range attrs {
	}
	if want == "" {
		return nil, fmt.Errorf("%w: %s: attribute %q has an empty value", ErrFilter, path, name)
	}
	if !validAttributeName(name) {
		return nil, fmt.Errorf("%w: %s: %q is not a CloudEvents attribute name (lower-case letters and digits)", ErrFilter, path, name)
	}
	return matchFunc(func(e event.Event) bool {
		got, ok := Attribute(e, name)
		return ok && cmp(got, want)
	}), nil
}

func validAttributeName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
