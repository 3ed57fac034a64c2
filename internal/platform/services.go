package platform

import (
	"github.com/overture-music/overture/internal/auth"
	"github.com/overture-music/overture/internal/catalog"
	"github.com/overture-music/overture/internal/feed"
	"github.com/overture-music/overture/internal/ingest"
	"github.com/overture-music/overture/internal/listens"
	"github.com/overture-music/overture/internal/opsapi"
	"github.com/overture-music/overture/internal/payment/sandbox"
	"github.com/overture-music/overture/internal/query"
	"github.com/overture-music/overture/internal/server"
	"github.com/overture-music/overture/internal/steering"
	"github.com/overture-music/overture/internal/subscription"
)

// Services returns every long-lived HTTP service the platform hosts and
// `overture serve NAME` can run standalone. Add yours with one line.
func Services() []server.Service {
	return []server.Service{
		auth.New(),
		steering.New(),
		catalog.New(),
		query.New(),
		subscription.New(),
		sandbox.NewService(),
		ingest.NewService(),
		listens.New(),
		feed.New(),
		opsapi.New(),
	}
}

// Service finds a service by name.
func Service(name string) (server.Service, bool) {
	for _, s := range Services() {
		if s.Name() == name {
			return s, true
		}
	}
	return nil, false
}
