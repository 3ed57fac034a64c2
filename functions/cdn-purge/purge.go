// Package cdnpurge removes a track's replaced audio from every POP when its
// renditions are replaced, so no listener is served the old bytes (segment
// URLs are immutable for a year in browsers, but POPs must not keep them),
// and takes a track down on every POP when it is unpublished or deleted:
// its cached objects are purged (by tag, the track id every POP derives from
// the key) and its already issued URLs revoked.
//
// The event only proposes; the catalog database decides. A replacement
// purges (Plan) only old keys that are no longer a rendition of any track
// (nor inside a current HLS directory), and an old HLS directory only if it
// lies inside the track's own tracks/<id>/ space and holds no current
// rendition: never a tag, a wildcard or a current key. An in-place
// replacement (same key, new bytes) is therefore not purged; a new encoding
// gets a new key (docs/cdn.md). A takedown is carried out only if the
// catalog has the track unpublished or no longer has it. So a forged event
// can at most drop objects nobody should be served any more.
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
	"github.com/jackc/pgx/v5"

	"github.com/overture-music/overture/edge"
	"github.com/overture-music/overture/internal/catalog"
	"github.com/overture-music/overture/internal/config"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/popadmin"
	"github.com/overture-music/overture/internal/postgres"
	"github.com/overture-music/overture/internal/telemetry"
)

// Name is the function's name.
const Name = "cdn-purge"

// Purge is the function.
type Purge struct {
	popadmin.Driver
	pool *postgres.Pool
}

// New returns the function.
func New() *Purge { return &Purge{} }

// Start reads CDN_POPS (name=region=url,…) and CDN_ADMIN_SECRET (both
// required, popadmin.Driver.Read) and DATABASE_URL, the catalog database
// purges are checked against (its tables are migrated).
func (f *Purge) Start(ctx context.Context, cfg map[string]string) error {
	var url string
	if err := f.Join(cfg, Name, func(r *config.Reader) { url = databaseURL(r) }); err != nil {
		return err
	}
	pool, err := f.OpenPool(ctx, url, catalog.Migrate)
	if err != nil {
		return fmt.Errorf("%s: %w", Name, err)
	}
	f.pool = pool
	return nil
}

// ConfigKeys lists the settings the function reads.
func (f *Purge) ConfigKeys() []config.Key {
	return config.KeysOf(func(r *config.Reader) { new(popadmin.Driver).Read(r); databaseURL(r) })
}

// databaseURL reads the catalog database purges are checked against.
func databaseURL(r *config.Reader) string { return r.String(postgres.KeyDatabaseURL) }

// Request builds the purge a replacement proposes: its old keys, and the
// directories of its old HLS playlists. Plan decides what of it is done.
func Request(d eventtype.TrackRenditionsReplacedData) edge.PurgeRequest {
	var req edge.PurgeRequest
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

// Plan keeps of Request(d) what the catalog says was replaced (see the
// package doc); it returns the purge and what it refused, with the reason.
func (f *Purge) Plan(ctx context.Context, d eventtype.TrackRenditionsReplacedData) (edge.PurgeRequest, []string, error) {
	var out edge.PurgeRequest
	state, err := f.trackState(ctx, d.TrackID)
	if err != nil {
		return out, nil, err
	}
	if state == "" {
		return out, []string{"track " + d.TrackID + " is not in the catalog"}, nil
	}
	req := Request(d)
	var refused []string
	for _, k := range req.Keys {
		var current bool
		err := f.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM track_rendition WHERE storage_key = $1
			OR (storage_key LIKE '%.m3u8' AND starts_with($1, regexp_replace(storage_key, '[^/]*$', ''))))`, k).Scan(&current)
		if err != nil {
			return out, nil, fmt.Errorf("is %q current: %w", k, err)
		}
		if current || !validKey(k) {
			refused = append(refused, "key "+k+" is current or malformed")
			continue
		}
		out.Keys = append(out.Keys, k)
	}
	space := "tracks/" + d.TrackID + "/"
	for _, p := range req.Prefixes {
		var holds bool
		if err := f.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM track_rendition WHERE starts_with(storage_key, $1))`, p).Scan(&holds); err != nil {
			return out, nil, fmt.Errorf("does %q hold renditions: %w", p, err)
		}
		inside := len(p) > len(space) && (strings.HasPrefix(p, space) || strings.Contains(p, "/"+space))
		if holds || !inside || !validKey(p) {
			refused = append(refused, "prefix "+p+" holds current renditions or lies outside "+space)
			continue
		}
		out.Prefixes = append(out.Prefixes, p)
	}
	return out, refused, nil
}

// trackState is the catalog's state of track id, "" when it has none.
func (f *Purge) trackState(ctx context.Context, id string) (string, error) {
	var state string
	err := f.pool.QueryRow(ctx, `SELECT state FROM track WHERE id::text = $1`, id).Scan(&state)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("look up track %s: %w", id, err)
	}
	return state, nil
}

// validKey refuses keys no catalog rendition can have and path tricks.
func validKey(k string) bool {
	if k == "" || len(k) > 1024 || strings.ContainsAny(k, "\x00\r\n*?") {
		return false
	}
	for seg := range strings.SplitSeq(strings.TrimSuffix(k, "/"), "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
	}
	return true
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
	var err error
	if t := e.Type(); t == eventtype.TrackUnpublished || t == eventtype.TrackDeleted {
		takedown = &eventtype.TrackData{}
		if err := f.Decode(e, t, takedown); err != nil {
			return nil, err
		}
		d.TrackID = takedown.TrackID
	} else if err = f.Decode(e, eventtype.TrackRenditionsReplaced, &d); err != nil {
		return nil, err
	}
	if d.TrackID == "" {
		return nil, fmt.Errorf("%s: event %s has no track_id", Name, e.ID())
	}
	var req edge.PurgeRequest
	var refused []string
	if takedown != nil {
		state, err := f.trackState(ctx, d.TrackID)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", Name, err)
		}
		if state == "published" || state != "" && e.Type() == eventtype.TrackDeleted {
			refused = append(refused, "the catalog has track "+d.TrackID+" "+state)
		} else {
			req.Tags = []string{d.TrackID}
		}
	} else if req, refused, err = f.Plan(ctx, d); err != nil {
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	if len(refused) > 0 {
		f.Log.WarnContext(ctx, "refused to purge what the catalog does not back", "event_id", e.ID(),
			"event_type", e.Type(), "event_source", e.Source(), "track_id", d.TrackID, "refused", refused)
	}
	if len(req.Keys)+len(req.Prefixes)+len(req.Tags) == 0 {
		return nil, nil
	}
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
