package listens

import (
	"context"

	"github.com/overture-music/overture/internal/server"
)

// readRoutes are the statistics the listener and everyone read.
var readRoutes = []server.Route{}

// startRead opens what the read API needs.
func (s *Service) startRead(context.Context, map[string]string) error { return nil }
