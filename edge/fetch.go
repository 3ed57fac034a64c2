package edge

import (
	"context"
	"errors"
	"strings"
	"time"
)

// flight is one origin fetch that any number of requests wait for. The fetch
// runs detached from the request that started it, so a listener who hangs up
// does not fail the others.
type flight struct {
	done chan struct{}
	info objectInfo
	data []byte
	err  error
}

// revalidateIdx is the flight index of a playlist revalidation.
const revalidateIdx = -1

// coalesce runs fetch at most once per k at a time; concurrent callers wait
// for the running one. fresh reports, under the flight lock, whether the
// cache already answers (closing the gap between a cache miss and the lock).
func (s *Server) coalesce(ctx context.Context, k sliceKey, fresh func() bool, fetch func(context.Context) (objectInfo, []byte, error)) (objectInfo, []byte, bool, error) {
	s.flightMu.Lock()
	if f, ok := s.flights[k]; ok {
		s.flightMu.Unlock()
		return wait(ctx, f)
	}
	if fresh != nil && fresh() {
		s.flightMu.Unlock()
		return objectInfo{}, nil, true, nil
	}
	f := &flight{done: make(chan struct{})}
	s.flights[k] = f
	s.flightMu.Unlock()
	go func() {
		fctx, cancel := context.WithTimeout(context.Background(), s.cfg.OriginTimeout+5*time.Second)
		defer cancel()
		f.info, f.data, f.err = fetch(fctx)
		s.flightMu.Lock()
		delete(s.flights, k)
		s.flightMu.Unlock()
		close(f.done)
	}()
	return wait(ctx, f)
}

func wait(ctx context.Context, f *flight) (objectInfo, []byte, bool, error) {
	select {
	case <-f.done:
		return f.info, f.data, false, f.err
	case <-ctx.Done():
		return objectInfo{}, nil, false, ctx.Err()
	}
}

// fetchSlice loads slice idx of key from the origin and caches it (and, for
// slice 0, the object's metadata). etag pins the version when known.
func (s *Server) fetchSlice(ctx context.Context, key string, idx int64, etag string) (objectInfo, []byte, error) {
	s.st.originFetches.Add(1)
	s.metrics.originFetches.Inc()
	info, data, err := s.origin.getSlice(ctx, key, idx*s.cfg.SliceSize, s.cfg.SliceSize, etag, "")
	if err != nil {
		s.metrics.originErrors.Inc()
		return objectInfo{}, nil, err
	}
	s.st.bytesIn.Add(int64(len(data)))
	k := sliceKey{key, idx}
	if idx == 0 {
		info.Tag = s.store.tagRe(key)
		s.store.putMeta(info)
	}
	s.store.put(k, data)
	return info, data, nil
}

func isPlaylist(key string) bool { return strings.HasSuffix(key, ".m3u8") }

// cacheState says how a request was answered, for X-Cache and the hit ratio.
type cacheState int

const (
	stateHit cacheState = iota
	stateMiss
	stateStale
)

func (c cacheState) String() string {
	return [...]string{"HIT", "MISS", "STALE"}[c]
}

// object returns what the POP knows about key, fetching slice 0 on a cold
// miss and revalidating a stale playlist. When revalidation fails the stale
// copy is served (stale-if-error).
func (s *Server) object(ctx context.Context, key string) (objectInfo, cacheState, error) {
	if info, ok := s.store.info(key); ok {
		if !isPlaylist(key) || time.Since(info.Fetched) < s.cfg.PlaylistTTL {
			return info, stateHit, nil
		}
		fresh := func() bool {
			i, ok := s.store.info(key)
			return ok && time.Since(i.Fetched) < s.cfg.PlaylistTTL
		}
		_, _, cached, err := s.coalesce(ctx, sliceKey{key, revalidateIdx}, fresh, func(fctx context.Context) (objectInfo, []byte, error) {
			return s.revalidate(fctx, info)
		})
		if err != nil {
			if ctx.Err() != nil {
				return objectInfo{}, stateMiss, ctx.Err()
			}
			s.log.Warn("playlist revalidation failed; serving stale", "key", key, "error", err)
			return info, stateStale, nil
		}
		if ni, ok := s.store.info(key); ok {
			st := stateMiss
			if cached {
				st = stateHit
			}
			return ni, st, nil
		}
		return s.object(ctx, key)
	}
	k := sliceKey{key, 0}
	info, _, cached, err := s.coalesce(ctx, k, func() bool { _, ok := s.store.info(key); return ok }, func(fctx context.Context) (objectInfo, []byte, error) {
		return s.fetchSlice(fctx, key, 0, "")
	})
	if err != nil {
		return objectInfo{}, stateMiss, err
	}
	if cached {
		info, _ = s.store.info(key)
		return info, stateHit, nil
	}
	return info, stateMiss, nil
}

// revalidate asks the origin whether a playlist changed since info.
func (s *Server) revalidate(ctx context.Context, info objectInfo) (objectInfo, []byte, error) {
	s.st.originFetches.Add(1)
	s.metrics.originFetches.Inc()
	ni, data, err := s.origin.getSlice(ctx, info.Key, 0, s.cfg.SliceSize, "", info.ETag)
	switch {
	case errors.Is(err, errNotModified):
		s.store.touchMeta(info.Key, time.Now())
		return info, nil, nil
	case errors.Is(err, ErrNotFound):
		s.store.purge(info.Key)
		return objectInfo{}, nil, err
	case err != nil:
		s.metrics.originErrors.Inc()
		return objectInfo{}, nil, err
	}
	s.st.bytesIn.Add(int64(len(data)))
	if ni.ETag != info.ETag {
		s.store.purge(info.Key)
	}
	ni.Tag = s.store.tagRe(info.Key)
	s.store.putMeta(ni)
	s.store.put(sliceKey{info.Key, 0}, data)
	return ni, data, nil
}

// slice returns slice idx of an object described by info.
func (s *Server) slice(ctx context.Context, info objectInfo, idx int64) ([]byte, cacheState, error) {
	k := sliceKey{info.Key, idx}
	if b, t := s.store.get(k); t != tierNone {
		return b, stateHit, nil
	}
	_, data, cached, err := s.coalesce(ctx, k, func() bool { return s.store.has(k) }, func(fctx context.Context) (objectInfo, []byte, error) {
		return s.fetchSlice(fctx, info.Key, idx, info.ETag)
	})
	if err != nil {
		if errors.Is(err, errChanged) {
			s.store.purge(info.Key)
		}
		return nil, stateMiss, err
	}
	if cached {
		if b, t := s.store.get(k); t != tierNone {
			return b, stateHit, nil
		}
		return s.slice(ctx, info, idx)
	}
	return data, stateMiss, nil
}

// prefetch warms the next slice of a large object while the current one is
// being written, so sequential playback does not wait on the origin.
func (s *Server) prefetch(info objectInfo, idx int64) {
	if idx >= s.store.slices(info.Size) || s.store.has(sliceKey{info.Key, idx}) {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.OriginTimeout)
		defer cancel()
		_, _, _ = s.slice(ctx, info, idx)
	}()
}
