package cli

import (
	"context"
	"errors"
)

// runAdmin is a placeholder until the auth work lands.
func runAdmin(ctx context.Context, args []string) error {
	return errors.New("not built yet")
}
