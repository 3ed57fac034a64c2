package cli

import (
	"context"
	"errors"
)

// runServe is a placeholder until the platform work lands.
func runServe(ctx context.Context, args []string) error {
	return errors.New("not built yet")
}
