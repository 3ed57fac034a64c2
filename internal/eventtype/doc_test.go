package eventtype

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// TestEventsDocIsCurrent fails when docs/events.md no longer matches the
// catalog.
func TestEventsDocIsCurrent(t *testing.T) {
	got, err := os.ReadFile("../../docs/events.md")
	if err != nil {
		t.Fatalf("read docs/events.md: %v (generate it: go run ./cmd/overture events doc > docs/events.md)", err)
	}
	if string(got) != Markdown() {
		t.Fatal("docs/events.md is out of date with internal/eventtype; regenerate it:\n\n\tgo run ./cmd/overture events doc > docs/events.md")
	}
}

func TestMarkdownListsEveryTypeAndField(t *testing.T) {
	md := Markdown()
	for _, s := range All() {
		if !strings.Contains(md, "\n## `"+s.Type+"`\n") {
			t.Errorf("no section for %s", s.Type)
		}
	}
	type inner struct {
		A string `json:"a"`
	}
	type data struct {
		ID    string   `json:"id"`
		Skip  string   `json:"-"`
		Opt   *int     `json:"opt"`
		Items []inner  `json:"items,omitempty"`
		Tags  []string `json:"tags,omitempty"`
	}
	var names []string
	for _, f := range dataFields(reflect.TypeOf(data{}), "") {
		names = append(names, f.name+":"+f.typ)
	}
	want := "id:string opt:*int items:[]eventtype.inner items[].a:string tags:[]string"
	if strings.Join(names, " ") != want {
		t.Errorf("fields = %q, want %q", strings.Join(names, " "), want)
	}
}
