// Package functions lists every CloudEvents function Overture has, so the
// embedded platform can host them all and `overture func <name>` can run one
// standalone (what each Knative Service runs). Each function lives in its own
// package below this one, with a func.yaml beside its code.
package functions

import (
	authentitlement "github.com/overture-music/overture/functions/auth-entitlement"
	cdnpurge "github.com/overture-music/overture/functions/cdn-purge"
	cdnwarm "github.com/overture-music/overture/functions/cdn-warm"
	"github.com/overture-music/overture/functions/deadletter"
	ingestfn "github.com/overture-music/overture/functions/ingest"
	"github.com/overture-music/overture/functions/noop"
	"github.com/overture-music/overture/functions/notification"
	paymentfn "github.com/overture-music/overture/functions/payment"
	recommendfn "github.com/overture-music/overture/functions/recommend"
	renewalfn "github.com/overture-music/overture/functions/renewal"
	sagamanager "github.com/overture-music/overture/functions/saga-manager"
	searchindexer "github.com/overture-music/overture/functions/search-indexer"
	statswriter "github.com/overture-music/overture/functions/stats-writer"
	subscriptionfn "github.com/overture-music/overture/functions/subscription"
	userfn "github.com/overture-music/overture/functions/user"
	"github.com/overture-music/overture/internal/function"
)

// Entry names a function and how to make one.
type Entry struct {
	// Name matches func.yaml's name and the Knative Service name that Triggers
	// reference in subscriber.ref.
	Name string
	New  func() function.Handler
}

// All returns every function, one line each.
func All() []Entry {
	return []Entry{
		{Name: "noop", New: func() function.Handler { return noop.New() }},
		{Name: deadletter.Name, New: func() function.Handler { return deadletter.New() }},
		{Name: "auth-entitlement", New: func() function.Handler { return authentitlement.New() }},
		{Name: notification.Name, New: func() function.Handler { return notification.New() }},
		{Name: "payment", New: func() function.Handler { return paymentfn.New() }},
		{Name: "subscription", New: func() function.Handler { return subscriptionfn.New() }},
		{Name: "user", New: func() function.Handler { return userfn.New() }},
		{Name: "renewal", New: func() function.Handler { return renewalfn.New() }},
		{Name: "saga-manager", New: func() function.Handler { return sagamanager.New() }},
		{Name: searchindexer.Name, New: func() function.Handler { return searchindexer.New() }},
		{Name: cdnwarm.Name, New: func() function.Handler { return cdnwarm.New() }},
		{Name: cdnpurge.Name, New: func() function.Handler { return cdnpurge.New() }},
		{Name: ingestfn.Name, New: func() function.Handler { return ingestfn.New() }},
		{Name: statswriter.Name, New: func() function.Handler { return statswriter.New() }},
		{Name: recommendfn.Name, New: func() function.Handler { return recommendfn.New() }},
	}
}

// Lookup finds a function by name.
func Lookup(name string) (Entry, bool) {
	for _, e := range All() {
		if e.Name == name {
			return e, true
		}
	}
	return Entry{}, false
}
