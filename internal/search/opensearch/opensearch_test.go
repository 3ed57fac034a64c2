package opensearch_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/overture-music/overture/internal/search"
	"github.com/overture-music/overture/internal/search/opensearch"
	"github.com/overture-music/overture/internal/search/searchtest"
	"github.com/overture-music/overture/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var seq atomic.Int64

// open gives each test its own alias (and so its own indices) on the
// package's node.
func open(t *testing.T) search.Store {
	url := testenv.OpenSearch(t)
	alias := fmt.Sprintf("t%d-%s", seq.Add(1), strings.ToLower(strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())))
	st, err := opensearch.Open(t.Context(), url, alias)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestConformance(t *testing.T) {
	searchtest.Run(t, open)
}

// call sends one JSON request to the node and decodes the answer into out.
func call(t *testing.T, method, url string, body string, out any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: %d %s", method, url, resp.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, url, err, b)
		}
	}
}

// TestPurgeOnIndexOfOlderBuild: an index created before "version" was mapped
// (and with the default gc_deletes) is upgraded at Open, so the tombstones
// written from then on can be purged; a tombstone written before keeps an
// unindexed version, is not purged and keeps protecting (a reindex drops it).
func TestPurgeOnIndexOfOlderBuild(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	base := testenv.OpenSearch(t)
	alias := fmt.Sprintf("t%d-older-build", seq.Add(1))
	name := alias + "-old"
	call(t, http.MethodPut, base+"/"+name, `{"settings":{"number_of_shards":1,"number_of_replicas":0,"refresh_interval":"100ms"},
		"mappings":{"dynamic":false,"properties":{"id":{"type":"keyword"},"deleted":{"type":"boolean"}}},
		"aliases":{"`+alias+`":{}}}`, nil)
	// The older build's tombstone of ID(1) at version 20.
	call(t, http.MethodPut, base+"/"+name+"/_doc/"+searchtest.ID(1)+"?version=20&version_type=external&refresh=true",
		`{"id":"`+searchtest.ID(1)+`","version":20,"deleted":true,"artists":[],"renditions":[]}`, nil)

	st, err := opensearch.Open(ctx, base, alias)
	if err != nil {
		t.Fatal(err)
	}
	var mapping map[string]struct {
		Mappings struct {
			Properties map[string]struct {
				Type string `json:"type"`
			} `json:"properties"`
		} `json:"mappings"`
	}
	call(t, http.MethodGet, base+"/"+name+"/_mapping", "", &mapping)
	if got := mapping[name].Mappings.Properties["version"].Type; got != "long" {
		t.Fatalf("after Open the old index maps version as %q, want long", got)
	}
	var set map[string]struct {
		Settings struct {
			Index struct {
				GCDeletes string `json:"gc_deletes"`
			} `json:"index"`
		} `json:"settings"`
	}
	call(t, http.MethodGet, base+"/"+name+"/_settings", "", &set)
	if got := set[name].Settings.Index.GCDeletes; got != "0s" {
		t.Errorf("after Open the old index has gc_deletes %q, want 0s", got)
	}

	if err := st.Apply(ctx, []search.Op{search.Delete(searchtest.ID(2), 30)}); err != nil {
		t.Fatal(err)
	}
	n, err := st.PurgeTombstones(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("purge removed %d tombstones, want 1 (the one written after the upgrade)", n)
	}
	// The older tombstone still blocks an older write; the purged one does not.
	doc := func(i int) search.Track {
		return search.Track{ID: searchtest.ID(i), Title: "Older build", Artists: []search.Artist{{ID: "o", Name: "O"}}}
	}
	// OpenSearch remembers a deleted document's version for
	// index.gc_deletes, so the purged one may refuse the write for a while.
	testenv.WaitFor(t, 2*time.Minute, "a v10 write below the purged tombstone (v30) to be accepted", func() bool {
		if err := st.Apply(ctx, []search.Op{search.Upsert(doc(1), 10), search.Upsert(doc(2), 10)}); err != nil {
			t.Fatal(err)
		}
		got, err := st.Get(ctx, searchtest.ID(1), searchtest.ID(2))
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := got[searchtest.ID(1)]; ok {
			t.Fatalf("the older build's tombstone (v20) let a v10 write through: %+v", got)
		}
		_, ok := got[searchtest.ID(2)]
		return ok
	})
}
