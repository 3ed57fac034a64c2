package query

import (
	"net/url"
	"testing"

	"github.com/overture-music/overture/internal/search"
)

// FuzzParseQuery checks that any query string either is refused or yields a
// query within the bounds the backends rely on.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{"q=kino", "q=&page=2&size=100", "year_from=1990&year_to=1980", "size=0", "page=9999999999999999999", "q=%ZZ", "artist=00000000-0000-4000-8000-000000000001&genre=rock"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, err := parseQuery(v)
		if err != nil {
			return
		}
		if q.Page < 1 || q.Size < 1 || q.Size > search.MaxSize || q.Page*q.Size > search.MaxWindow || len(q.Q) > 200 {
			t.Fatalf("accepted out-of-bounds query %+v from %q", q, raw)
		}
		if q.YearFrom != 0 && q.YearTo != 0 && q.YearFrom > q.YearTo {
			t.Fatalf("accepted inverted year range %+v", q)
		}
	})
}
