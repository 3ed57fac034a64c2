package main

import (
	"context"
	"errors"
)

// openCH: the ClickHouse backend is being built (internal/stats); until it
// lands only -backends postgres runs.
func openCH(context.Context, string) (*backend, error) {
	return nil, errors.New("the ClickHouse backend of internal/stats is not built yet")
}
