package platform

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// PrintURLs writes the table of every address a developer wants once the
// platform is up. Secrets are never printed.
func (p *Platform) PrintURLs(w io.Writer) {
	fmt.Fprintf(w, "\nOverture is running. Data: %s. Ctrl-C stops everything.\n\n", p.opts.DataDir)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "  %s\t%s\n", k, v) }
	row("Gateway (every /v1 API)", p.gatewayURL)
	row("OpenAPI document", p.gatewayURL+"/openapi.json")
	row("Health", p.gatewayURL+"/health/readiness")
	row("Metrics", p.gatewayURL+"/metrics")
	row("Broker ingress", p.ingressURL)
	for _, s := range p.opts.Services {
		row("Service "+s.Name(), p.serviceURLs[s.Name()])
	}
	for _, d := range append(p.deps, p.pops...) {
		v := d.url
		if !d.started {
			v += "  (external)"
		}
		row(d.name, v)
	}
	row("Outbox relay", p.relay)
	names := slices.Sorted(maps.Keys(p.handlers))
	row(fmt.Sprintf("Functions (%d)", len(names)), strings.Join(names, ", "))
	tw.Flush()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Ready(ctx); err != nil {
		fmt.Fprintf(w, "\n  NOT READY (see %s/health/readiness):\n", p.gatewayURL)
		for line := range strings.Lines(err.Error()) {
			fmt.Fprintf(w, "    - %s", strings.TrimRight(line, "\n")+"\n")
		}
	}
	fmt.Fprintln(w)
}
