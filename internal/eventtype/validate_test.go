package eventtype

import (
	"strings"
	"testing"
)

// TestCatalogIsValid: the real catalog passes Validate.
func TestCatalogIsValid(t *testing.T) {
	if err := Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestValidateRejects: each rule of Validate catches the defect it names.
func TestValidateRejects(t *testing.T) {
	type data struct{ ID string }
	good := Spec{Type: Prefix + "thing.happened.v1", Data: data{}, Producers: []string{"a"}, Consumers: []string{"b"}}
	with := func(f func(*Spec)) Spec { s := good; f(&s); return s }
	tests := []struct {
		name  string
		specs []Spec
		want  string // "" = valid
	}{
		{"valid", []Spec{good}, ""},
		{"terminal without consumer", []Spec{with(func(s *Spec) { s.Consumers, s.Terminal = nil, true })}, ""},
		{"knative ping", []Spec{with(func(s *Spec) { s.Type = Ping })}, ""},
		{"duplicate", []Spec{good, good}, "listed twice"},
		{"no version", []Spec{with(func(s *Spec) { s.Type = Prefix + "thing.happened" })}, "not reverse-DNS"},
		{"upper case", []Spec{with(func(s *Spec) { s.Type = Prefix + "Thing.happened.v1" })}, "not reverse-DNS"},
		{"version zero", []Spec{with(func(s *Spec) { s.Type = Prefix + "thing.happened.v0" })}, "not reverse-DNS"},
		{"no data", []Spec{with(func(s *Spec) { s.Data = nil })}, "Data must be a struct"},
		{"pointer data", []Spec{with(func(s *Spec) { s.Data = &data{} })}, "Data must be a struct"},
		{"no producer", []Spec{with(func(s *Spec) { s.Producers = nil })}, "no producer"},
		{"no consumer", []Spec{with(func(s *Spec) { s.Consumers = nil })}, "no consumer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := validate(tt.specs)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("want valid, got %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("want an error containing %q, got %v", tt.want, err)
			}
		})
	}
}
