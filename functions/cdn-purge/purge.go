// Package cdnpurge removes a track's replaced audio from every POP when its
// renditions are replaced, so no listener is served the old bytes (segment
// URLs are immutable for a year in browsers, but POPs must not keep them),
// and takes a track down on every POP when it is unpublished or deleted:
// its cached objects are purged and its already issued URLs revoked.
// It purges by tag (the track id, which every POP derives from the key) and,
// belt and braces, by the old keys and the old HLS directories.
//
// Purging is naturally idempotent, so a redelivered event is harmless; any
// POP that cannot be reached fails the handler and the broker retries.
package cdnpurge

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"sync"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/overture-music/overture/edge"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/popadmin"
	"github.com/overture-music/overture/internal/telemetry"
)

// Name is the function's name.
const Name = "cdn-purge"

// Purge is the function.
type Purge struct {
	popadmin.Driver
}

// New returns the function.
func New() *Purge { return &Purge{} }

// Start reads CDN_POPS (name=region=url,…) and CDN_ADMIN_SECRET; unset,
// they default to the three loopback POPs of `make run`.
func (f *Purge) Start(_ context.Context, cfg map[string]string) error {
	return f.Join(cfg, Name)
}

// Request builds the purge for a replacement.
func Request(d eventtype.TrackRenditionsReplacedData) edge.PurgeRequest {
	req := edge.PurgeRequest{Tags: []string{d.TrackID}}
	for _, r := range d.Old {
		k := strings.TrimPrefix(r.StorageKey, "/")
		if k == "" {
			continue
		}
		req.Keys = append(req.Keys, k)
		if strings.HasSuffix(k, ".m3u8") {
			if dir := path.Dir(k); dir != "." {
				req.Prefixes = append(req.Prefixes, dir+"/")
			}
		}
	}
	return req
}

// Revocation is what a takedown (TrackUnpublished, TrackDeleted; a rights
// takedown unpublishes) asks of every POP: refuse the track's already issued
// URLs (its key space tracks/<id>/ and the directories of its renditions)
// and drop its cached objects.
func Revocation(d eventtype.TrackData) edge.RevokeRequest {
	req := edge.RevokeRequest{Prefixes: []string{"tracks/" + d.TrackID + "/"}}
	for _, r := range d.Renditions {
		if dir := path.Dir(strings.TrimPrefix(r.StorageKey, "/")); dir != "." && !strings.HasPrefix(dir+"/", req.Prefixes[0]) {
			req.Prefixes = append(req.Prefixes, dir+"/")
		}
	}
	return req
}

// Handle purges the old renditions on every POP; on a takedown it revokes
// the track's URLs there as well.
func (f *Purge) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	ctx = telemetry.FromEvent(ctx, e)
	var d eventtype.TrackRenditionsReplacedData
	var takedown *eventtype.TrackData
	if t := e.Type(); t == eventtype.TrackUnpublished || t == eventtype.TrackDeleted {
		takedown = &eventtype.TrackData{}
		if err := f.Decode(e, t, takedown); err != nil {
			return nil, err
		}
		d.TrackID = takedown.TrackID
	} else if err := f.Decode(e, eventtype.TrackRenditionsReplaced, &d); err != nil {
		return nil, err
	}
	if d.TrackID == "" {
		return nil, fmt.Errorf("%s: event %s has no track_id", Name, e.ID())
	}
	req := Request(d)
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for _, pop := range f.POPs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := f.Client.Purge(ctx, pop.URL, req)
			if err == nil && takedown != nil {
				var rv edge.RevokeResult
				rv, err = f.Client.Revoke(ctx, pop.URL, Revocation(*takedown))
				res.Purged += rv.Purged
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("POP %s: %w", pop.Name, err))
				return
			}
			f.Log.InfoContext(ctx, "purged", "track_id", d.TrackID, "pop", pop.Name, "objects", res.Purged)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("%s: track %s: %w", Name, d.TrackID, err)
	}
	return nil, nil
}
