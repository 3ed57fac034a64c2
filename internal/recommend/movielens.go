package recommend

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// ReadInter reads ratings in RecBole's atomic .inter format — a header line
// naming the columns (`user_id:token item_id:token rating:float
// timestamp:float`, tab-separated, in any order), then one rating a line —
// and calls fn with each as a listen: the user, the item as a track, the
// timestamp (Unix seconds) as its time. A rating counts as consumption (a
// scrobble), whatever its value: implicit-feedback evaluations of MovieLens
// treat every rated movie as an interaction. MovieLens-100K comes this way
// (hack/deps/movielens.sh).
func ReadInter(r io.Reader, fn func(Listen) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return fmt.Errorf("reading the header: %w", err)
		}
		return fmt.Errorf("no header line")
	}
	col := map[string]int{}
	for k, h := range strings.Split(sc.Text(), "\t") {
		name, _, _ := strings.Cut(h, ":")
		col[name] = k
	}
	need := []string{"user_id", "item_id", "timestamp"}
	for _, n := range need {
		if _, ok := col[n]; !ok {
			return fmt.Errorf("the header has no %s column: %q", n, sc.Text())
		}
	}
	width := len(col)
	line := 1
	for sc.Scan() {
		line++
		if sc.Text() == "" {
			continue
		}
		f := strings.Split(sc.Text(), "\t")
		if len(f) != width {
			return fmt.Errorf("line %d: %d fields, the header has %d", line, len(f), width)
		}
		user, item := f[col["user_id"]], f[col["item_id"]]
		if user == "" || item == "" {
			return fmt.Errorf("line %d: empty user or item", line)
		}
		ts, err := strconv.ParseFloat(f[col["timestamp"]], 64)
		if err != nil || ts < 0 || ts > 1e11 {
			return fmt.Errorf("line %d: timestamp %q is not Unix seconds", line, f[col["timestamp"]])
		}
		if err := fn(Listen{User: user, Track: item, At: time.Unix(int64(ts), 0).UTC(), Scrobble: true}); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("line %d: %w", line+1, err)
	}
	return nil
}
