// Package cdnwarm is the push half of the CDN: when a track is published it
// warms, in every region, the POP that steering will send the track's
// listeners to (rendezvous owner), so the first listeners of a new release
// hit a warm cache instead of stampeding the origin (Open Connect-style fill,
// but per event rather than in a nightly window).
//
// Warming is naturally idempotent (a second warm is a cache hit), so a
// redelivered event needs no inbox; a failed region makes the handler fail
// and the broker retry.
package cdnwarm

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/overture-music/overture/internal/config"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/popadmin"
	"github.com/overture-music/overture/internal/steering"
	"github.com/overture-music/overture/internal/telemetry"
)

// Name is the function's name.
const Name = "cdn-warm"

// Warm is the function.
type Warm struct {
	popadmin.Driver
}

// New returns the function.
func New() *Warm { return &Warm{} }

// Start reads CDN_POPS (name=region=url,…) and CDN_ADMIN_SECRET, both
// required (popadmin.Driver.Read).
func (f *Warm) Start(_ context.Context, cfg map[string]string) error {
	return f.Join(cfg, Name)
}

// ConfigKeys lists the settings the function reads.
func (f *Warm) ConfigKeys() []config.Key { return popadmin.Keys() }

// Handle warms the track's renditions, standard ones before premium ones,
// on the owning POP of each region.
func (f *Warm) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	ctx = telemetry.FromEvent(ctx, e)
	var d eventtype.TrackData
	if err := f.Decode(e, eventtype.TrackPublished, &d); err != nil {
		return nil, err
	}
	if d.TrackID == "" {
		return nil, fmt.Errorf("%s: event %s has no track_id", Name, e.ID())
	}
	standard, premium := Keys(d.Renditions)
	if len(standard)+len(premium) == 0 {
		f.Log.InfoContext(ctx, "track has no renditions to warm", "track_id", d.TrackID)
		return nil, nil
	}
	byRegion := map[string][]steering.POP{}
	for _, p := range f.POPs {
		byRegion[p.Region] = append(byRegion[p.Region], p)
	}
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for region, pops := range byRegion {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f.warmRegion(ctx, d.TrackID, region, pops, standard, premium); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("%s: track %s: %w", Name, d.TrackID, err)
	}
	return nil, nil
}

// warmRegion pushes to the track's owner in the region, falling back to the
// next POP in rendezvous order when the owner does not answer (steering does
// the same when the owner is down).
func (f *Warm) warmRegion(ctx context.Context, track, region string, pops []steering.POP, batches ...[]string) error {
	var last error
	for _, pop := range steering.Owners(track, pops) {
		last = nil
		for _, keys := range batches {
			if len(keys) == 0 {
				continue
			}
			res, err := f.Client.Warm(ctx, pop.URL, keys)
			if err != nil {
				last = fmt.Errorf("region %s, POP %s: %w", region, pop.Name, err)
				break
			}
			if len(res.Failed) > 0 {
				// The POP is fine; the origin lacks objects. Retrying later
				// (broker redelivery) helps if ingest is still writing them.
				return fmt.Errorf("region %s, POP %s: %d objects failed: %v", region, pop.Name, len(res.Failed), firstFailure(res.Failed))
			}
			f.Log.InfoContext(ctx, "warmed", "track_id", track, "region", region, "pop", pop.Name, "objects", res.Objects, "bytes", res.Bytes)
		}
		if last == nil {
			return nil
		}
		f.Log.WarnContext(ctx, "warm failed; trying the next POP of the region", "error", last)
	}
	return last
}

func firstFailure(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys[0] + ": " + m[keys[0]]
}

// Keys splits renditions into standard and premium storage keys (playlists
// expand to their segments at the POP).
func Keys(rs []eventtype.Rendition) (standard, premium []string) {
	for _, r := range rs {
		k := strings.TrimPrefix(r.StorageKey, "/")
		if k == "" {
			continue
		}
		if r.Premium {
			premium = append(premium, k)
		} else {
			standard = append(standard, k)
		}
	}
	return standard, premium
}
