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
	e, err := standaloneTarget(args, "func", "function", functionNames, functions.Lookup)
	if err != nil {
		return err
	}
	return function.Serve(ctx, e.Name, e.New(), function.Config(), standaloneLogger("function", e.Name), nil)
}

// standaloneTarget resolves the one NAME argument of `overture func` and
// `overture serve` (command) to the function or service (kind) it names,
// printing the usage with every known name (names) when the argument is
// missing or unknown.
func standaloneTarget[T any](args []string, command, kind string, names func() []string, lookup func(string) (T, bool)) (T, error) {
	var zero T
	if len(args) != 1 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintf(os.Stderr, "usage: overture %s NAME\n\n%ss: %s\n", command, kind, strings.Join(names(), ", "))
		return zero, errUsage
	}
	t, ok := lookup(args[0])
	if !ok {
		fmt.Fprintf(os.Stderr, "overture %s: no %s %q; %ss: %s\n", command, kind, args[0], kind, strings.Join(names(), ", "))
		return zero, errUsage
	}
	return t, nil
}

// standaloneLogger is the JSON logger of a standalone function or service
// (key "function" or "service"), also made slog's default so code logging
// through slog.Default logs JSON with the same name.
func standaloneLogger(key, name string) *slog.Logger {
	log := telemetry.NewLogger(os.Stderr, telemetry.LevelFromEnv()).With(key, name)
	slog.SetDefault(log)
	return log
}

func functionNames() []string {
	var names []string
	for _, e := range functions.All() {
		names = append(names, e.Name)
	}
	slices.Sort(names)
	return names
}
