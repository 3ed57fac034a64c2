package edge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// flight is one origin fetch that any number of requests share. Bytes are
// published as they arrive, so every waiter streams the slice while it is
// still being fetched (time to first byte is one origin round trip, not one
// slice transfer). The fetch runs detached from the request that started
// it, so a listener who hangs up does not fail the others.
type flight struct {
	hdr  chan struct{} // closed once info (or err) is known
	done chan struct{} // closed when the fetch has finished

	mu       sync.Mutex
	changed  chan struct{} // closed and replaced whenever n grows or the fetch ends
	info     objectInfo
	buf      []byte // fixed capacity; buf[:n] is final
	n        int
	finished bool
	err      error
}

func newFlight() *flight {
	return &flight{hdr: make(chan struct{}), done: make(chan struct{}), changed: make(chan struct{})}
}

func (f *flight) setHeader(info objectInfo, size int) {
	f.mu.Lock()
	f.info, f.buf = info, make([]byte, size)
	f.mu.Unlock()
	close(f.hdr)
}

func (f *flight) publish(n int) {
	f.mu.Lock()
	f.n = n
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
}

func (f *flight) finish(err error) {
	f.mu.Lock()
	f.finished, f.err = true, err
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
	select {
	case <-f.hdr:
	default:
		close(f.hdr)
	}
	close(f.done)
}

// header waits for the object's metadata.
func (f *flight) header(ctx context.Context) (objectInfo, error) {
	select {
	case <-f.hdr:
	case <-ctx.Done():
		return objectInfo{}, ctx.Err()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil && f.buf == nil {
		return objectInfo{}, f.err
	}
	return f.info, nil
}

// next waits until more than have bytes are available (or the fetch ended)
// and returns the available prefix.
func (f *flight) next(ctx context.Context, have int) ([]byte, bool, error) {
	for {
		f.mu.Lock()
		view, fin, err, ch := f.buf[:f.n], f.finished, f.err, f.changed
		f.mu.Unlock()
		if err != nil {
			return nil, true, err
		}
		if len(view) > have || fin {
			return view, fin, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
}

// wait blocks until the fetch is complete and returns its bytes.
func (f *flight) wait(ctx context.Context) (objectInfo, []byte, error) {
	select {
	case <-f.done:
	case <-ctx.Done():
		return objectInfo{}, nil, ctx.Err()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.info, f.buf[:f.n], f.err
}

// revalidateIdx is the flight index of a playlist revalidation.
const revalidateIdx = -1

// join returns the running flight for k, or starts one with run, unless
// cached reports (under the flight lock, closing the gap between a cache
// miss and the lock) that the cache already answers: then it returns nil.
func (s *Server) join(k sliceKey, cached func() bool, run func(context.Context, *flight) error) *flight {
	s.flightMu.Lock()
	if f, ok := s.flights[k]; ok {
		s.flightMu.Unlock()
		return f
	}
	if cached != nil && cached() {
		s.flightMu.Unlock()
		return nil
	}
	f := newFlight()
	s.flights[k] = f
	s.flightMu.Unlock()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.OriginTimeout+5*time.Second)
		defer cancel()
		err := run(ctx, f)
		// Leave the map before announcing the end: a request arriving after
		// a failure must start a fresh fetch, not join the failed one (and
		// after a success it finds the slice in the cache).
		s.flightMu.Lock()
		delete(s.flights, k)
		s.flightMu.Unlock()
		f.finish(err)
	}()
	return f
}

// sliceLen is the length of slice idx of an object of size bytes.
func (s *Server) sliceLen(size, idx int64) int64 {
	return max(0, min(s.cfg.SliceSize, size-idx*s.cfg.SliceSize))
}

// fetchSlice streams slice idx of key from the origin into f and then into
// the cache (and, for slice 0, records the object's metadata). etag pins
// the version when known.
func (s *Server) fetchSlice(ctx context.Context, f *flight, key string, idx int64, etag string) error {
	s.st.originFetches.Add(1)
	s.metrics.originFetches.Inc()
	epoch := s.store.epoch(key)
	err := func() error {
		info, body, done, err := s.origin.openSlice(ctx, key, idx*s.cfg.SliceSize, s.cfg.SliceSize, etag, "")
		if err != nil {
			return err
		}
		defer done()
		defer body.Close()
		want := s.sliceLen(info.Size, idx)
		info.Tag = s.store.tagRe(key)
		f.setHeader(info, int(want))
		n := 0
		for n < int(want) {
			m, rerr := body.Read(f.buf[n:min(n+64<<10, int(want))])
			if m > 0 {
				n += m
				f.publish(n)
				s.st.bytesIn.Add(int64(m))
			}
			if rerr == io.EOF {
				break
			}
			if rerr != nil {
				return classifyOrigin(ctx, key, fmt.Errorf("read body: %w", rerr))
			}
		}
		if n != int(want) {
			return fmt.Errorf("%w: %s slice %d: got %d of %d bytes", ErrOriginUnreachable, key, idx, n, want)
		}
		if s.store.epoch(key) != epoch {
			return nil // purged while fetching: serve these bytes once, keep none
		}
		if idx == 0 {
			s.store.putMeta(info)
		}
		s.store.put(sliceKey{key, idx}, f.buf)
		return nil
	}()
	if err != nil {
		s.metrics.originErrors.Inc()
	}
	return err
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

// object returns what the POP knows about key, starting the fetch of slice 0
// on a cold miss (returning as soon as the origin's headers arrive) and
// revalidating a stale playlist. When revalidation fails the stale copy is
// served (stale-if-error).
func (s *Server) object(ctx context.Context, key string) (objectInfo, cacheState, error) {
	if info, ok := s.store.info(key); ok {
		if !isPlaylist(key) || s.cfg.Clock.Since(info.Fetched) < s.cfg.PlaylistTTL {
			return info, stateHit, nil
		}
		f := s.join(sliceKey{key, revalidateIdx}, func() bool {
			i, ok := s.store.info(key)
			return ok && s.cfg.Clock.Since(i.Fetched) < s.cfg.PlaylistTTL
		}, func(fctx context.Context, _ *flight) error {
			return s.revalidate(fctx, info)
		})
		if f == nil {
			return s.object(ctx, key)
		}
		if _, _, err := f.wait(ctx); err != nil {
			if ctx.Err() != nil {
				return objectInfo{}, stateMiss, ctx.Err()
			}
			s.log.Warn("playlist revalidation failed; serving stale", "key", key, "error", err)
			return info, stateStale, nil
		}
		if ni, ok := s.store.info(key); ok {
			return ni, stateMiss, nil
		}
		return s.object(ctx, key)
	}
	f := s.join(sliceKey{key, 0}, func() bool { _, ok := s.store.info(key); return ok }, func(fctx context.Context, f *flight) error {
		return s.fetchSlice(fctx, f, key, 0, "")
	})
	if f == nil {
		return s.object(ctx, key)
	}
	info, err := f.header(ctx)
	if err != nil {
		return objectInfo{}, stateMiss, err
	}
	return info, stateMiss, nil
}

// revalidate asks the origin whether a playlist changed since info.
func (s *Server) revalidate(ctx context.Context, info objectInfo) error {
	s.st.originFetches.Add(1)
	s.metrics.originFetches.Inc()
	ni, data, err := s.origin.getSlice(ctx, info.Key, 0, s.cfg.SliceSize, "", info.ETag)
	switch {
	case errors.Is(err, errNotModified):
		s.store.touchMeta(info.Key, s.cfg.Clock.Now())
		return nil
	case errors.Is(err, ErrNotFound):
		s.store.purge(info.Key)
		return err
	case err != nil:
		s.metrics.originErrors.Inc()
		return err
	}
	s.st.bytesIn.Add(int64(len(data)))
	if ni.ETag != info.ETag {
		s.store.purge(info.Key)
	}
	ni.Tag = s.store.tagRe(info.Key)
	s.store.putMeta(ni)
	s.store.put(sliceKey{info.Key, 0}, data)
	return nil
}

// sliceSource returns slice idx either complete (from a cache tier) or as
// the flight that is fetching it.
func (s *Server) sliceSource(info objectInfo, idx int64) ([]byte, *flight) {
	k := sliceKey{info.Key, idx}
	for {
		if b, t := s.store.get(k); t != tierNone {
			return b, nil
		}
		f := s.join(k, func() bool { return s.store.has(k) }, func(ctx context.Context, f *flight) error {
			return s.fetchSlice(ctx, f, info.Key, idx, info.ETag)
		})
		if f != nil {
			return nil, f
		}
	}
}

// slice returns slice idx complete (waiting for a running fetch).
func (s *Server) slice(ctx context.Context, info objectInfo, idx int64) ([]byte, error) {
	b, f := s.sliceSource(info, idx)
	if f == nil {
		return b, nil
	}
	_, b, err := f.wait(ctx)
	if errors.Is(err, errChanged) {
		s.store.purge(info.Key)
	}
	return b, err
}

// prefetch warms the next slice of a large object while the current one is
// being written, so sequential playback does not wait on the origin.
func (s *Server) prefetch(info objectInfo, idx int64) {
	if idx >= s.store.slices(info.Size) || s.store.has(sliceKey{info.Key, idx}) {
		return
	}
	s.sliceSource(info, idx)
}
