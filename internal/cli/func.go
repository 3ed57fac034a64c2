package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"

	"github.com/overture-music/overture/functions"
	"github.com/overture-music/overture/internal/function"
	"github.com/overture-music/overture/internal/telemetry"
)

// runFunc runs one function standalone, as its Knative Service does:
// `overture func NAME` serves CloudEvents on LISTEN_ADDRESS and publishes to
// K_SINK.
func runFunc(ctx context.Context, args []string) error {
	if len(args) != 1 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintf(os.Stderr, "usage: overture func NAME\n\nfunctions: %s\n", strings.Join(functionNames(), ", "))
		return errUsage
	}
	e, ok := functions.Lookup(args[0])
	if !ok {
		fmt.Fprintf(os.Stderr, "overture func: no function %q; functions: %s\n", args[0], strings.Join(functionNames(), ", "))
		return errUsage
	}
	log := telemetry.NewLogger(os.Stderr, telemetry.LevelFromEnv()).With("function", e.Name)
	slog.SetDefault(log)
	return function.Serve(ctx, e.Name, e.New(), function.Config(), log, nil)
}

func functionNames() []string {
	var names []string
	for _, e := range functions.All() {
		names = append(names, e.Name)
	}
	slices.Sort(names)
	return names
}
