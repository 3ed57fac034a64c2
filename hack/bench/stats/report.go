package main

import (
	"fmt"
	"strings"
	"time"
)

// goalIngest and goalP95 are issue 13's goals.
const (
	goalIngest = 50_000
	goalP95    = 50 * time.Millisecond
)

func writeLoad(md *strings.Builder, rs []*result) {
	fmt.Fprintf(md, "## Bulk load and storage\n\nThe same rows into each store through `stats.Store.Write` (what the stats-writer calls; PostgreSQL: `INSERT … SELECT FROM unnest(…) ON CONFLICT DO NOTHING` in 500-row statements, one transaction per call; ClickHouse: its own insert path), %s rows a call, %d writers at a time, in time order. *In Write* is the writers' summed time inside the call (the rest is building rows from the records). Bytes are the listens' table and its indexes (or parts) as the store reports them, after the settle step.\n\n", count(int64(*batch)), *writers)
	fmt.Fprintf(md, "| store | listens stored | wall | listens/s | in Write | settle after load | bytes/listen | on disk |\n| --- | ---: | ---: | ---: | ---: | --- | ---: | --- |\n")
	for _, r := range rs {
		fmt.Fprintf(md, "| %s | %s | %.1f s | **%s** | %.1f s | %s | **%.0f** | %s |\n", r.name, count(r.load.added), r.load.wall.Seconds(),
			count(int64(r.load.rate())), r.load.inWrite.Seconds(), r.settle, float64(r.storage.total)/float64(r.load.n), escape(r.storage.detail))
	}
	md.WriteString("\n")
}

func writeQueries(md *strings.Builder, rs []*result) {
	if len(rs) == 0 {
		return
	}
	fmt.Fprintf(md, "## Queries over %s listens\n\nOne call at a time after 3 unmeasured ones, parameters drawn with a fixed seed from the listens themselves (a random listen gives the listener, artist, day or month, so busy listeners and popular artists are asked for as often as they play or are played) — the same parameters on every store. Up to %d calls per query, fewer when %s ran out (at least 10). Milliseconds. *Client*: the `stats.Store` call as the service makes it, result decoded. *Server*: PostgreSQL's own logged durations of the call's statements (parse, bind, execute; `log_min_duration_statement=0` on the query connections); chDB's elapsed time as the engine reports it. chDB runs **inside** this process — no socket, no serialisation to another process, but its threads share the 2 cores with the Go runtime — while PostgreSQL is another process behind a loopback socket: client times include that hop for PostgreSQL only.\n\n",
		count(rs[0].load.n), *samples, *budget)
	md.WriteString("| query |")
	for _, r := range rs {
		fmt.Fprintf(md, " %s client p50 / p95 | server p50 / p95 |", r.name)
	}
	md.WriteString(" calls |\n| --- |")
	for range rs {
		md.WriteString(" ---: | ---: |")
	}
	md.WriteString(" --- |\n")
	for i, q := range rs[0].queries {
		fmt.Fprintf(md, "| %s |", q.name)
		var ns []string
		for _, r := range rs {
			if i >= len(r.queries) {
				md.WriteString(" | |")
				continue
			}
			x := r.queries[i]
			srv := "n/a"
			if x.serverOK && len(x.server) > 0 {
				srv = ms(pct(x.server, 50)) + " / " + ms(pct(x.server, 95))
			}
			fmt.Fprintf(md, " %s / **%s** | %s |", ms(pct(x.client, 50)), ms(pct(x.client, 95)), srv)
			ns = append(ns, fmt.Sprint(x.n))
		}
		fmt.Fprintf(md, " %s |\n", strings.Join(ns, " / "))
	}
	md.WriteString("\nWhat each query is:\n\n")
	for _, q := range rs[0].queries {
		fmt.Fprintf(md, "- **%s**: %s\n", q.name, q.what)
	}
	md.WriteString("\n")
}

func writeGoals(md *strings.Builder, rs []*result) {
	md.WriteString("## Goals (issue 13)\n\n")
	for _, r := range rs {
		for _, g := range []string{"history", "chart"} {
			worst, name := time.Duration(0), ""
			for _, q := range r.queries {
				if q.goal == g && pct(q.client, 95) > worst {
					worst, name = pct(q.client, 95), q.name
				}
			}
			if name == "" {
				continue
			}
			fmt.Fprintf(md, "- %s, %s p95 < 50 ms over %s listens: **%s** (%s ms, %s).\n", r.name, g, count(r.load.n), metOr(worst < goalP95), ms(worst), name)
		}
		fmt.Fprintf(md, "- %s, bulk load ≥ 50,000 listens/s: **%s** (%s/s).\n", r.name, metOr(r.load.rate() >= goalIngest), count(int64(r.load.rate())))
	}
	for _, e := range e2eResults {
		fmt.Fprintf(md, "- End to end through `POST /v1/listens` on %s, ≥ 50,000 listens/s durably ingested: **%s** (%s/s).\n", e.backend, metOr(e.rate() >= goalIngest), count(int64(e.rate())))
	}
	md.WriteString("\n")
}

func metOr(ok bool) string {
	if ok {
		return "met"
	}
	return "missed"
}
