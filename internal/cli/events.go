package cli

import (
	"context"
	"errors"
)

// runEvents is a placeholder until the broker work lands.
func runEvents(ctx context.Context, args []string) error {
	return errors.New("not built yet")
}
