package cli

import (
	"context"
	"errors"
)

// runDev is a placeholder until the platform work lands.
func runDev(ctx context.Context, args []string) error {
	return errors.New("not built yet")
}
