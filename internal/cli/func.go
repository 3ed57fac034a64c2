package cli

import (
	"context"
	"errors"
)

// runFunc is a placeholder until the platform work lands.
func runFunc(ctx context.Context, args []string) error {
	return errors.New("not built yet")
}
