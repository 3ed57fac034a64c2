package cli

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/overture-music/overture/edge"
	"github.com/overture-music/overture/internal/platform"
	"github.com/overture-music/overture/internal/telemetry"
)

// runEdge runs one CDN edge POP standalone (what a POP machine runs), or with
// --dev the three loopback POPs of `make run` in one process. Settings come
// from the environment (see edge.ConfigFromMap); only --dev fills what is
// unset with `make run`'s development values, a single POP without its
// secrets does not start.
func runEdge(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("edge", flag.ContinueOnError)
	name := fs.String("name", "pop", "POP name")
	region := fs.String("region", "local", "region this POP serves")
	addr := fs.String("addr", "127.0.0.1:9101", "listen address")
	disk := fs.String("disk-dir", "", "disk tier directory (empty: memory only)")
	dev := fs.Bool("dev", false, "run the three make-run POPs (127.0.0.1:9101-9103) with disk tiers under ./.data")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := telemetry.NewLogger(os.Stderr, telemetry.LevelFromEnv())
	cfg := platform.Environ()
	if *dev {
		ctx, cancel := signal.NotifyContext(ctx, os.Interrupt)
		defer cancel()
		// --dev is make run's POPs: the platform's development keys apply.
		if err := platform.ApplyDevDefaults(cfg, ".data"); err != nil {
			return err
		}
		stop, err := edge.StartDev(ctx, cfg, ".data", log)
		if err != nil {
			return err
		}
		for _, p := range edge.DevPOPs {
			fmt.Fprintf(os.Stderr, "POP %s (%s) on http://%s\n", p.Name, p.Region, p.Addr)
		}
		<-ctx.Done()
		return stop(context.WithoutCancel(ctx))
	}
	c, err := edge.ConfigFromMap(cfg)
	if err != nil {
		return err
	}
	c.Name, c.Region, c.Addr, c.DiskDir, c.Logger = *name, *region, *addr, *disk, log
	s, err := edge.New(c)
	if err != nil {
		return err
	}
	return s.Run(ctx)
}
