package cli

import (
	"context"
	"errors"
)

// runReindex is a placeholder until the search work lands.
func runReindex(ctx context.Context, args []string) error {
	return errors.New("not built yet")
}
